"""A person with a browser: logs in at the Hub, opens the service's page, and is taken through
the Hub's OAuth (with PKCE) to a home page that lists their courses."""

from __future__ import annotations

import re

import requests

from .conftest import EXCHANGE_ADMIN, JupyterHub

VIEWER = 'viewer'


def admin_call(hub: JupyterHub, token: str, method: str, route: str, **form) -> dict:
    response = requests.request(
        method, f'{hub.exchange_url}/{route}', headers={'Authorization': f'token {token}'}, data=form, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def hub_login(hub: JupyterHub, name: str) -> requests.Session:
    """Log in on the Hub's own form, as a browser does (the dummy authenticator takes any password)."""
    browser = requests.Session()
    form = browser.get(f'{hub.public_url}/hub/login', timeout=30)
    assert form.status_code == 200
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)
    login = browser.post(
        f'{hub.public_url}/hub/login',
        data={'username': name, 'password': 'any', '_xsrf': xsrf},
        allow_redirects=False,
        timeout=30,
    )
    assert login.status_code == 302, login.text
    return browser


def test_a_browser_logs_in_through_the_hub_and_sees_its_courses(jupyterhub: JupyterHub):
    jupyterhub.create_users([EXCHANGE_ADMIN, VIEWER])
    admin_token = jupyterhub.new_token(EXCHANGE_ADMIN)
    admin_call(jupyterhub, admin_token, 'POST', 'course/seminar-7', instructors='[]')
    admin_call(jupyterhub, admin_token, 'POST', f'student/seminar-7/{VIEWER}', first_name='V', last_name='W', email='')

    browser = hub_login(jupyterhub, VIEWER)
    first = browser.get(f'{jupyterhub.exchange_url}/', allow_redirects=False, timeout=30)
    assert first.status_code == 302
    assert '/hub/api/oauth2/authorize?' in first.headers['Location']
    assert 'code_challenge_method=S256' in first.headers['Location']

    home = browser.get(f'{jupyterhub.exchange_url}/', timeout=30)
    assert home.status_code == 200, home.text
    assert home.url == f'{jupyterhub.exchange_url}/'
    assert f'Signed in as <b>{VIEWER}</b>' in home.text
    assert '<li>seminar-7</li>' in home.text

    # The login cookie also serves the browser's reads of the API, never its writes.
    courses = browser.get(f'{jupyterhub.exchange_url}/courses', allow_redirects=False, timeout=30)
    assert courses.json() == {'success': True, 'courses': ['seminar-7']}
    write = browser.post(f'{jupyterhub.exchange_url}/course/stolen', allow_redirects=False, timeout=30)
    assert write.status_code == 403
    assert admin_call(jupyterhub, admin_token, 'GET', 'courses')['courses'] == ['seminar-7']


def test_a_forged_oauth_callback_grants_nothing(jupyterhub: JupyterHub):
    browser = requests.Session()
    callback = browser.get(
        f'{jupyterhub.exchange_url}/oauth_callback',
        params={'code': 'made-up', 'state': 'made-up'},
        allow_redirects=False,
        timeout=30,
    )
    assert callback.status_code == 403
    assert callback.json()['success'] is False
    assert not browser.cookies
