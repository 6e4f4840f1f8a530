#!/bin/sh
# Builds ngshare_s3 and every dependency as wheels into one folder, which is all the image's
# final stage installs from. The Dockerfile's builder stage and the wheel test
# (tests/deploy/test_image.py) both run this script, so CI exercises the same pip commands.
#
#   usage: build-wheels.sh WHEEL_DIR [SOURCE_DIR]      (interpreter: $PYTHON, else python3)
#
# Our own package is built from source as a pure-Python wheel; the dependencies must come as
# binary wheels (--only-binary=:all:), so no compiler is ever needed to build the image.
set -eu
wheels="${1:?usage: build-wheels.sh WHEEL_DIR [SOURCE_DIR]}"
source_dir="${2:-.}"
python="${PYTHON:-python3}"

rm -rf "$wheels"
mkdir -p "$wheels"
"$python" -m pip wheel --no-deps --wheel-dir "$wheels" "$source_dir"
"$python" -m pip wheel --only-binary=:all: --wheel-dir "$wheels" "$wheels"/ngshare_s3-*.whl
