// Command validate loads a Compose file the way Docker Compose v2 does (compose-go): the
// specification's schema, variable interpolation from an env file, and the references between
// services, networks, volumes and secrets. It prints the resolved project as JSON, or the
// loader's error with exit status 1.
//
//	usage: validate COMPOSE_FILE ENV_FILE
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: validate COMPOSE_FILE ENV_FILE")
		os.Exit(2)
	}
	file, envFile := os.Args[1], os.Args[2]
	options, err := cli.NewProjectOptions(
		[]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		fail(err)
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		fail(err)
	}
	output, err := project.MarshalJSON()
	if err != nil {
		fail(err)
	}
	os.Stdout.Write(append(output, '\n'))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
