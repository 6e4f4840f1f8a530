"""JupyterHub in the docker compose trial stack (docker-compose.yml): demo logins, ngshare_s3 as
the external service `ngshare`, and users' servers as local processes inside this container.

Why local processes and not DockerSpawner: DockerSpawner needs the Docker socket mounted into
the Hub (root on the host for anyone who gets into the Hub) and cannot be exercised without a
Docker engine. SimpleLocalProcessSpawner runs every user's server as a process of the Hub's
container, from the same virtualenv, with nbgrader and ngshare-s3-exchange installed
(docker/singleuser/requirements.txt) and nbgrader configured in /etc/jupyter: enough to try the
exchange, not a multi-user isolation boundary. For production use Zero to JupyterHub (k8s/).

Every value comes from the environment docker-compose.yml gives this container.
"""

import os

c = get_config()  # noqa: F821

# The public proxy on :8000 (published on the host's 127.0.0.1); the Hub's API on :8081,
# reached by the ngshare_s3 replicas as http://hub:8081/hub/api.
c.JupyterHub.bind_url = "http://0.0.0.0:8000"
c.JupyterHub.hub_bind_url = "http://0.0.0.0:8081"
c.JupyterHub.hub_connect_url = os.environ.get("JUPYTERHUB_HUB_CONNECT_URL", "http://hub:8081")
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/data/jupyterhub.sqlite"
# The cookie secret comes from JPY_COOKIE_SECRET (hex), which JupyterHub reads itself.

# Demo logins: any user name with the shared password from .env (DEMO_PASSWORD).
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ["DEMO_PASSWORD"]
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {os.environ.get("JUPYTERHUB_ADMIN", "admin")}

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "/srv/jupyterhub/home/{username}"
c.Spawner.default_url = "/tree"

# ngshare_s3: two replicas behind one address (docker-compose.yml: the network alias `ngshare`),
# registered as an external service; the replicas hold the same token (NGSHARE_API_TOKEN).
c.JupyterHub.services = [
    {
        "name": "ngshare",
        "url": os.environ["NGSHARE_URL"],
        "api_token": os.environ["NGSHARE_API_TOKEN"],
        "oauth_no_confirm": True,
        "display": True,
    }
]
# Users may open /services/ngshare/ in a browser; their servers' tokens (which nbgrader sends)
# may reach the service.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", "access:services!service=ngshare"]},
    {"name": "server", "scopes": ["users:activity!user", "access:servers!server", "access:services!service=ngshare"]},
]
