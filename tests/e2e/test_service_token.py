"""A service whose API token the Hub does not accept (mistyped, or the Hub's record of it changed):
JupyterHub takes that token as the service's OAuth client secret, so every browser login fails,
while the token checks of API callers, which send the caller's own token, go on working. Only an
administrator can mend it, and the service says so."""

from __future__ import annotations

import secrets

import pytest
import requests

from . import conftest
from .conftest import EXCHANGE_ADMIN, JupyterHub
from .test_browser_login import hub_login

VIEWER = 'viewer'
REFUSED = (
    "JupyterHub refused the service's API token; an administrator must check the service's api_token configuration"
)


@pytest.fixture(scope='module')
def hub_refusing_the_service_token(tmp_path_factory):
    """JupyterHub with ngshare_s3 started under an API token other than the one the Hub gave it."""
    hub_program, proxy_program = conftest.jupyterhub_programs()
    folder = tmp_path_factory.mktemp('jupyterhub')
    storage = conftest.sqlite_and_local_files(None, tmp_path_factory.mktemp('service-data'))
    wrong_token = ['env', f'JUPYTERHUB_API_TOKEN={secrets.token_hex(32)}']
    admin_token = secrets.token_hex(32)
    with pytest.MonkeyPatch.context() as patch:
        command = conftest.ngshare_service_command
        patch.setattr(conftest, 'ngshare_service_command', lambda storage: wrong_token + command(storage))
        config, public_url = conftest.write_hub_config(folder, storage, admin_token, proxy_program)
    hub = conftest.start_jupyterhub(hub_program, proxy_program, folder, config, public_url, admin_token)
    try:
        conftest.wait_until_serving(hub)
        yield hub
    finally:
        hub.stop()


def test_a_refused_service_token_is_named_at_login_and_api_calls_still_work(hub_refusing_the_service_token):
    hub: JupyterHub = hub_refusing_the_service_token
    hub.create_users([EXCHANGE_ADMIN, VIEWER])
    admin_token = hub.new_token(EXCHANGE_ADMIN)
    courses = requests.get(f'{hub.exchange_url}/courses', headers={'Authorization': f'token {admin_token}'}, timeout=30)
    assert courses.json() == {'success': True, 'courses': []}

    browser = hub_login(hub, VIEWER)
    callback = browser.get(f'{hub.exchange_url}/', timeout=30)
    assert '/oauth_callback?' in callback.url
    assert (callback.status_code, callback.json()) == (503, {'success': False, 'message': REFUSED})
    refusals = [line for line in hub.log().splitlines() if "JupyterHub refused the service's API token at" in line]
    assert len(refusals) == 1 and refusals[0].startswith('[E '), refusals
