"""The operations flags: their defaults, their environment variables, and what they refuse."""

from __future__ import annotations

import pytest

from ngshare_s3.cpus import available_cpus
from ngshare_s3.settings import DEFAULT_GRACE_PERIOD, SettingsError, parse_settings


@pytest.fixture(autouse=True)
def hub_environment(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    for name in ("NGSHARE_S3_LOG_FORMAT", "NGSHARE_S3_METRICS_PORT", "NGSHARE_S3_GRACE_PERIOD", "NGSHARE_S3_PORT",
                 "NGSHARE_S3_WORKERS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    settings = parse_settings([])
    assert (settings.log_format, settings.metrics_port, settings.grace_period) == ("text", None, DEFAULT_GRACE_PERIOD)


def test_environment_and_flags(monkeypatch):
    monkeypatch.setenv("NGSHARE_S3_LOG_FORMAT", "json")
    monkeypatch.setenv("NGSHARE_S3_METRICS_PORT", "9090")
    monkeypatch.setenv("NGSHARE_S3_GRACE_PERIOD", "45")
    settings = parse_settings([])
    assert (settings.log_format, settings.metrics_port, settings.grace_period) == ("json", 9090, 45.0)
    settings = parse_settings(["--log-format", "text", "--metrics-port", "9091", "--grace-period", "0"])
    assert (settings.log_format, settings.metrics_port, settings.grace_period) == ("text", 9091, 0.0)


@pytest.mark.parametrize(
    "environment, arguments, message",
    [
        ({"NGSHARE_S3_LOG_FORMAT": "xml"}, [], "--log-format must be one of text, json"),
        ({}, ["--grace-period", "-1"], "--grace-period must be zero or a positive"),
        ({}, ["--port", "8080", "--metrics-port", "8080"], "--metrics-port must differ from the main port 8080"),
        ({}, ["--workers", "0"], "--workers must be a whole number, 1 or more, got '0'"),
        ({}, ["--workers", "-2"], "--workers must be a whole number, 1 or more, got '-2'"),
        ({"NGSHARE_S3_WORKERS": "two"}, [], "--workers must be a whole number, 1 or more, got 'two'"),
        ({"NGSHARE_S3_WORKERS": "1.5"}, [], "--workers must be a whole number, 1 or more, got '1.5'"),
    ],
)
def test_refused(monkeypatch, environment, arguments, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        parse_settings(arguments)


@pytest.mark.parametrize("admins", ["a, b", " a ,b ", "a,,b,", ", a,  ,b"])
def test_admin_names_are_stripped_and_blanks_dropped(admins):
    assert parse_settings(["--admins", admins]).admins == frozenset({"a", "b"})


def test_workers_default_to_the_available_cpus(monkeypatch):
    assert parse_settings([]).workers == available_cpus()
    monkeypatch.setenv("NGSHARE_S3_WORKERS", "")  # compose passes an unset variable on as empty
    assert parse_settings([]).workers == available_cpus()


def test_workers_from_the_environment_and_the_flag(monkeypatch):
    monkeypatch.setenv("NGSHARE_S3_WORKERS", "3")
    assert parse_settings([]).workers == 3
    assert parse_settings(["--workers", "1"]).workers == 1
