#!/bin/sh
# Installs ngshare_s3 from the folder build-wheels.sh filled, into a new virtualenv, without
# an index: what is not in that folder is not installed. The Dockerfile's final stage and the
# wheel test (tests/deploy/test_image.py) both run this script.
#
#   usage: install-wheels.sh WHEEL_DIR VENV_DIR        (interpreter: $PYTHON, else python3)
set -eu
wheels="${1:?usage: install-wheels.sh WHEEL_DIR VENV_DIR}"
venv="${2:?usage: install-wheels.sh WHEEL_DIR VENV_DIR}"
python="${PYTHON:-python3}"

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --no-index --find-links "$wheels" ngshare_s3
