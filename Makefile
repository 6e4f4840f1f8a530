# Two commands for a new user: `make demo` (a local JupyterHub with ngshare_s3 as its service)
# and `make test` (every test suite). Both install what they need into .venv and node_modules.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install servers clients test demo clean

install: $(VENV)/.installed node_modules/.installed servers clients

# MinIO and FerretDB for the tests, and helm and kubeconform for the chart checks, built with Go
# once per pinned version (see tests/servers.py).
servers: $(VENV)/.installed
	$(PY) tests/servers.py build

# The exchange client in client/, installed with nbgrader 0.9 and with nbgrader 0.8 into a
# virtualenv each under .cache/clients/, rebuilt when their pins or the client's pyproject.toml
# change, and the original ngshare 0.6.0 in one more (see tests/clients.py).
clients: $(VENV)/.installed
	$(PY) tests/clients.py build

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# The test files are spread over TEST_WORKERS pytest-xdist workers, each file on one worker, in
# the order tests/conftest.py gives (slowest first). `make test TEST_WORKERS=0` runs them all in
# this one process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest --numprocesses $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

demo: install
	$(PY) demo/run.py $(DEMO_ARGS)

clean:
	rm -rf $(VENV) node_modules .demo
