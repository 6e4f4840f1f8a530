"""The production backends on this machine, for `deadline.py --backend mongodb-postgres+minio`:
MinIO for the bucket, and FerretDB 1.x on PostgreSQL for the MongoDB database.

FerretDB pushes string-equality filters down to PostgreSQL but not to its SQLite engine, where
every lookup reads the whole collection; on PostgreSQL the numbers say something about the
service rather than about the test server. MinIO and FerretDB are the binaries
`tests/servers.py build` makes, started with that module's code; PostgreSQL is Debian's
(`apt-get install postgresql`), run as the `postgres` user since it refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT / "tests"))
import servers  # noqa: E402  (tests/servers.py: builds and starts MinIO and FerretDB)

BUCKET = "deadline-benchmark"
DATABASE = "ngshare"


class BackendError(RuntimeError):
    """A backend could not be started; the message says why."""


def postgres_bin() -> Path:
    """The newest PostgreSQL server programs Debian installed."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not versions:
        raise BackendError("PostgreSQL is not installed: apt-get install -y postgresql")
    return versions[-1].parent


def as_postgres(*command: str, **options) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    result = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120, **options)
    if result.returncode != 0:
        raise BackendError(f"`{' '.join(command)}` failed: {result.stderr.strip()[-800:]}")
    return result


@dataclass
class PostgreSQL:
    """A throw-away PostgreSQL cluster on 127.0.0.1, trusting local connections."""

    folder: Path
    port: int = field(default_factory=servers.free_port)
    started: bool = False

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def start(self) -> None:
        bin_dir = postgres_bin()
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        as_postgres(str(bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                    "--no-sync", "-E", "UTF8")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options,
                    "-l", str(self.folder / "postgres.log"), "-w", "-t", "60", "start")
        self.started = True
        as_postgres(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", DATABASE)

    def stop(self) -> None:
        if self.started:
            try:
                as_postgres(str(postgres_bin() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
            except (BackendError, subprocess.TimeoutExpired) as error:
                print(f"PostgreSQL did not stop: {error}", file=sys.stderr)
            self.started = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"


def start_ferretdb_on_postgres(folder: Path, postgres_url: str) -> servers.Server:
    program = servers.binary(servers.FERRETDB)
    return servers.start(
        "ferretdb", folder,
        lambda port: [
            str(program), "--handler=postgresql", f"--postgresql-url={postgres_url}",
            f"--listen-addr=127.0.0.1:{port}", "--debug-addr=-", f"--state-dir={folder}",
            "--telemetry=disable",
        ],
        servers._mongodb_answers,
    )


class ProductionBackends:
    """MinIO, PostgreSQL and FerretDB in a folder of their own, and what ngshare_s3 needs to use
    them: its --database and --storage, and the AWS_* variables."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="deadline-backends-"))
        self.folder.chmod(0o755)  # PostgreSQL runs as another user below it
        self.postgres = PostgreSQL(self.folder / "postgres")
        self.ferretdb: servers.Server | None = None
        self.minio: servers.Server | None = None
        self.s3: servers.S3Server | None = None

    def start(self) -> None:
        try:
            # MinIO answers its Prometheus endpoints without a token when told to.
            os.environ["MINIO_PROMETHEUS_AUTH_TYPE"] = "public"
            self.minio = servers.start_minio(self.folder / "minio")
            self.s3 = servers.S3Server(
                "minio", f"http://127.0.0.1:{self.minio.port}", servers.MINIO_USER, servers.MINIO_PASSWORD,
                bucket=BUCKET,
            )
            self.s3.client().create_bucket(Bucket=BUCKET)
            self.postgres.start()
            self.ferretdb = start_ferretdb_on_postgres(self.folder / "ferretdb", self.postgres.url)
        except servers.ServerUnavailable as error:
            raise BackendError(str(error)) from error

    def stop(self) -> None:
        for server in (self.ferretdb, self.minio):
            if server is not None:
                server.stop()
        self.postgres.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def database(self) -> str:
        return f"mongodb://127.0.0.1:{self.ferretdb.port}/ngshare"

    @property
    def storage(self) -> str:
        return f"s3://{BUCKET}/exchange"

    @property
    def environment(self) -> dict[str, str]:
        return self.s3.environment()

    @property
    def minio_url(self) -> str:
        return self.s3.endpoint_url

    def describe(self) -> str:
        return (f"FerretDB {servers.FERRETDB.version} on PostgreSQL {postgres_bin().parent.name}, "
                f"MinIO {servers.MINIO.version}")
