"""ngshare_s3: the nbgrader exchange for JupyterHub, speaking ngshare 0.6's HTTP API."""

__version__ = "0.1.0"
