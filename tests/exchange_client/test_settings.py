"""How the plugin is switched on and configured: configureExchange, the URL's fallbacks, who the
user is, the timeouts, and the refusal of a wildcard course where one course is needed."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeFactory
from nbgrader.exchange.abc.exchange import ExchangeError
from traitlets.config import Config

import ngshare_s3_exchange
from ngshare_s3_exchange import Exchange, configureExchange

CLIENT = Path(ngshare_s3_exchange.__file__).resolve().parents[1]
OPERATIONS = ['collect', 'fetch_assignment', 'fetch_feedback', 'list', 'release_assignment', 'release_feedback', 'submit']


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """None of the variables the plugin reads, unless a test sets them."""
    for name in ('NGSHARE_URL', 'PROXY_PUBLIC_SERVICE_HOST', 'JUPYTERHUB_USER', 'JUPYTERHUB_API_TOKEN'):
        monkeypatch.delenv(name, raising=False)


def configured(**settings) -> Config:
    config = Config()
    configureExchange(config, settings.pop('url', None))
    for name, value in settings.items():
        setattr(config.Exchange, name, value)
    return config


def test_star_import_gives_the_exchange_classes_and_configure_exchange():
    namespace: dict = {}
    exec('from ngshare_s3_exchange import *', namespace)
    expected = {'Exchange', 'ExchangeCollect', 'ExchangeFetchAssignment', 'ExchangeFetchFeedback', 'ExchangeList',
                'ExchangeReleaseAssignment', 'ExchangeReleaseFeedback', 'ExchangeSubmit', 'configureExchange'}
    assert expected <= set(namespace)


def test_configure_exchange_switches_every_nbgrader_operation_to_the_plugin():
    factory = ExchangeFactory(config=configured(url='http://hub.example/services/ngshare/'))
    assert factory.exchange is ngshare_s3_exchange.Exchange
    for operation in OPERATIONS:
        chosen = getattr(factory, operation)
        assert chosen.__module__.startswith('ngshare_s3_exchange.'), (operation, chosen)
        assert issubclass(chosen, Exchange)
    assert Exchange(config=factory.config).service_url() == 'http://hub.example/services/ngshare/'


def test_the_url_falls_back_to_the_old_setting_then_the_environment_then_kubernetes(monkeypatch):
    assert Exchange(config=configured(_ngshare_url='http://old/')).service_url() == 'http://old/'
    monkeypatch.setenv('NGSHARE_URL', 'http://from-environment/')
    assert Exchange(config=configured(_ngshare_url='http://old/')).service_url() == 'http://old/'
    assert Exchange(config=configured()).service_url() == 'http://from-environment/'
    monkeypatch.delenv('NGSHARE_URL')
    monkeypatch.setenv('PROXY_PUBLIC_SERVICE_HOST', '10.0.0.1')
    assert Exchange(config=configured()).service_url() == 'http://proxy-public/services/ngshare/'
    assert Exchange(config=configured(url='http://explicit/')).service_url() == 'http://explicit/'


def test_without_any_url_the_plugin_says_how_to_set_one():
    with pytest.raises(ExchangeError, match='No exchange URL is configured: call configureExchange'):
        Exchange(config=configured()).service_url()


def test_the_user_is_jupyterhub_user_else_the_os_account(monkeypatch):
    monkeypatch.setenv('USER', 'someone-else')
    assert Exchange(config=configured()).username == pwd.getpwuid(os.getuid()).pw_name
    monkeypatch.setenv('JUPYTERHUB_USER', 'student1')
    assert Exchange(config=configured()).username == 'student1'


def test_importing_needs_no_user_variables():
    environment = {'PATH': os.environ['PATH'], 'PYTHONPATH': str(CLIENT)}
    result = subprocess.run(
        [sys.executable, '-c', 'import ngshare_s3_exchange; print(ngshare_s3_exchange.Exchange().username)'],
        env=environment, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == pwd.getpwuid(os.getuid()).pw_name


def test_timeouts_and_token_reach_every_request(monkeypatch):
    monkeypatch.setenv('JUPYTERHUB_API_TOKEN', 'the-token')
    exchange = Exchange(config=configured(url='http://hub/', timeout=7.5, connect_timeout=2.0))
    assert exchange.service.timeout == (2.0, 7.5)
    assert exchange.service.session.headers['Authorization'] == 'token the-token'


@pytest.mark.parametrize('course_id', ['', '*', 'course*'])
def test_operations_on_one_course_refuse_a_wildcard_or_none(course_id):
    config = configured(url='http://hub/')
    config.CourseDirectory.course_id = course_id
    exchange = Exchange(coursedir=CourseDirectory(config=config), config=config)
    with pytest.raises(ExchangeError) as refusal:
        exchange.one_course()
    assert str(refusal.value).startswith(f"This needs one course, not {course_id or 'none'!r}: pass --course COURSE")
