# nbgrader's system-wide configuration in the trial stack (/etc/jupyter/nbgrader_config.py):
# every user's server uses ngshare_s3 as the exchange, reached through JupyterHub's proxy in the
# same container. Instructors name their course in their course folder's nbgrader_config.py.
from ngshare_s3_exchange import configureExchange

c = get_config()  # noqa: F821
configureExchange(c, "http://127.0.0.1:8000/services/ngshare/")
