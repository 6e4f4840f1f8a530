#!/bin/sh
# Creates the virtualenv the hub image runs JupyterHub and the users' servers from, and installs
# docker/hub/requirements.txt, docker/singleuser/requirements.txt and the exchange plugin
# (client/, copied to REQUIREMENTS_DIR/client) into it in one resolution.
# docker/hub/Dockerfile runs this script; so does CI (tests/compose/test_compose.py, with
# --dry-run), so the pip line an image build runs has been resolved outside Docker.
#
#   usage: install.sh VENV_DIR REQUIREMENTS_DIR [PIP_OPTION...]   (interpreter: $PYTHON, else python3)
set -eu
venv="${1:?usage: install.sh VENV_DIR REQUIREMENTS_DIR}"
requirements="${2:?usage: install.sh VENV_DIR REQUIREMENTS_DIR}"
python="${PYTHON:-python3}"
shift 2

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install "$@" \
    --requirement "$requirements/hub/requirements.txt" \
    --requirement "$requirements/singleuser/requirements.txt" \
    "$requirements/client"
