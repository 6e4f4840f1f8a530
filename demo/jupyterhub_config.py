"""JupyterHub configuration of the local demo; demo/run.py starts the Hub with it.

Everything listens on 127.0.0.1 and keeps its state under .demo/ in the repository.
"""

import os
import sys
from pathlib import Path

STATE = Path(__file__).resolve().parent.parent / ".demo"

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

# The Hub, its proxy and their state.
c.JupyterHub.bind_url = "http://127.0.0.1:8000"
c.JupyterHub.hub_ip = "127.0.0.1"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.pid_file = str(STATE / "jupyterhub-proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")

# Four accounts sharing one password; `admin` is also the exchange's admin (--admins below).
c.JupyterHub.authenticator_class = "jupyterhub.auth.DummyAuthenticator"
c.DummyAuthenticator.password = "demo"
c.Authenticator.admin_users = {"admin"}
c.Authenticator.allowed_users = {"instructor1", "student1", "student2"}

# Each user's server runs as the current system user, at home in .demo/home/<user>.
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = str(STATE / "home" / "{username}")
c.Spawner.ip = "127.0.0.1"
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
if os.geteuid() == 0:
    c.Spawner.args = ["--allow-root"]

# The exchange, started and stopped by the Hub (a managed service); with `run.py --production`
# an external service instead: replicas run.py started, behind one address.
exchange = {
    "name": "ngshare",
    "url": "http://127.0.0.1:10101",
    "command": [
        sys.executable, "-m", "ngshare_s3",
        "--admins", "admin",
        "--database", f"sqlite:///{STATE / 'ngshare.db'}",
        "--storage", str(STATE / "files"),
        "--host", "127.0.0.1",
    ],
    "timeout": 10,
}
if os.environ.get("DEMO_EXCHANGE_URL"):
    exchange = {
        "name": "ngshare",
        "url": os.environ["DEMO_EXCHANGE_URL"],
        "api_token": os.environ["DEMO_EXCHANGE_TOKEN"],
        "timeout": 10,
    }
c.JupyterHub.services = [
    exchange,
    # A token-only service with which run.py creates the users' terminal tokens.
    {"name": "demo-launcher", "api_token": os.environ["DEMO_LAUNCHER_TOKEN"]},
]

c.JupyterHub.load_roles = [
    # Lets every user open the exchange's pages in the browser (not needed by nbgrader).
    {"name": "user", "scopes": ["self", "access:services!service=ngshare"]},
    {"name": "demo-launcher", "scopes": ["tokens"], "services": ["demo-launcher"]},
]
