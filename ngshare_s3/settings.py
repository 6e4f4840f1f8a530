"""Configuration: parsed once from flags and environment into a frozen object."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

from .cpus import available_cpus
from .logs import LOG_FORMATS

# Beside ngshare's own files on the volume it used, but never the same names.
DEFAULT_DATABASE = "sqlite:////srv/ngshare/ngshare_s3.db"
DEFAULT_STORAGE = "/srv/ngshare/ngshare_s3_files/"
DEFAULT_MAX_BODY_SIZE = 1 << 30
DEFAULT_STANDALONE_PORT = 12121
DEFAULT_GRACE_PERIOD = 30.0
DEFAULT_MAX_FIELD_SIZE = 16 << 20
DEFAULT_UPLOAD_MEMORY = 64 << 20
MIN_UPLOAD_MEMORY = 1 << 20
DEFAULT_RELEASE_CACHE_SIZE = 256 << 20


class SettingsError(Exception):
    """A misconfiguration; its message is printed as the one line start-up fails with."""


@dataclass(frozen=True)
class Settings:
    database: str = DEFAULT_DATABASE
    storage: str = DEFAULT_STORAGE
    prefix: str = "/api/"
    admins: frozenset[str] = frozenset()
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = DEFAULT_STANDALONE_PORT
    hub_api_url: str = ""
    hub_api_token: str = field(default="", repr=False)
    hub_client_id: str = ""
    service_name: str = "ngshare"
    post_login_url: str = ""
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    hub_timeout: float = 10.0
    require_access_scope: bool = False
    hub_admins: bool = False
    cookie_secret: bytes = field(default=b"", repr=False)
    log_format: str = "text"
    metrics_port: int | None = None  # None: /metrics on the main port
    grace_period: float = DEFAULT_GRACE_PERIOD
    max_field_size: int = DEFAULT_MAX_FIELD_SIZE
    upload_memory: int = DEFAULT_UPLOAD_MEMORY
    workers: int = 1  # processes serving the port; the command line defaults to available_cpus()
    release_cache_size: int = DEFAULT_RELEASE_CACHE_SIZE  # bytes of release answers kept; 0: none


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """--database and --storage, shared by the service and `ngshare-s3 fsck`."""
    parser.add_argument(
        "--database",
        default=os.environ.get("NGSHARE_S3_DATABASE", DEFAULT_DATABASE),
        help="metadata store: mongodb://host/database or sqlite:////absolute/path.db "
        "[$NGSHARE_S3_DATABASE]",
    )
    parser.add_argument(
        "--storage",
        default=os.environ.get("NGSHARE_S3_STORAGE", DEFAULT_STORAGE),
        help="object store: s3://bucket/optional/prefix or a local directory [$NGSHARE_S3_STORAGE]",
    )


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="ngshare-s3",
        description="The nbgrader exchange service for JupyterHub (ngshare 0.6 API).",
    )
    parser.add_argument(
        "--admins",
        default=env("NGSHARE_S3_ADMINS", ""),
        help="comma-separated usernames that may manage every course [$NGSHARE_S3_ADMINS]",
    )
    add_store_arguments(parser)
    parser.add_argument(
        "--prefix",
        default=env("NGSHARE_S3_PREFIX") or env("JUPYTERHUB_SERVICE_PREFIX") or "/api/",
        help="URL prefix of every route [$NGSHARE_S3_PREFIX, else $JUPYTERHUB_SERVICE_PREFIX, else /api/]",
    )
    parser.add_argument(
        "--host",
        default=env("NGSHARE_S3_HOST"),
        help="bind address [$NGSHARE_S3_HOST; default 0.0.0.0 under JupyterHub, else 127.0.0.1]",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=env("NGSHARE_S3_PORT"),
        help="bind port [$NGSHARE_S3_PORT; default the port of $JUPYTERHUB_SERVICE_URL, else 12121]",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=_env_flag("NGSHARE_S3_DEBUG"),
        help="debug mode: detailed permission messages, debug endpoint [$NGSHARE_S3_DEBUG]",
    )
    parser.add_argument(
        "--jupyterhub_api_url",
        default=env("JUPYTERHUB_API_URL", ""),
        help="JupyterHub API URL, e.g. http://127.0.0.1:8081/hub/api [$JUPYTERHUB_API_URL]",
    )
    parser.add_argument(
        "--hub-admins",
        action="store_true",
        default=_env_flag("NGSHARE_S3_HUB_ADMINS"),
        help="JupyterHub's admin users also administer the exchange [$NGSHARE_S3_HUB_ADMINS]",
    )
    parser.add_argument(
        "--require-access-scope",
        action="store_true",
        default=_env_flag("NGSHARE_S3_REQUIRE_ACCESS_SCOPE"),
        help="accept only tokens that carry access:services!service=$JUPYTERHUB_SERVICE_NAME "
        "(default ngshare); "
        "the nbgrader plugin's tokens carry it only if the Hub's roles grant it "
        "[$NGSHARE_S3_REQUIRE_ACCESS_SCOPE]",
    )
    parser.add_argument(
        "--no-upgrade-db",
        action="store_true",
        help="accepted for ngshare compatibility; the schema is created idempotently",
    )
    parser.add_argument(
        "--max-body-size",
        type=int,
        default=env("NGSHARE_S3_MAX_BODY_SIZE", DEFAULT_MAX_BODY_SIZE),
        help="largest request body in bytes, answered with 413 above it [$NGSHARE_S3_MAX_BODY_SIZE]",
    )
    parser.add_argument(
        "--hub-timeout",
        type=float,
        default=env("NGSHARE_S3_HUB_TIMEOUT", 10.0),
        help="seconds to wait for JupyterHub to identify a token [$NGSHARE_S3_HUB_TIMEOUT]",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=env("NGSHARE_S3_LOG_FORMAT", "text"),
        help="text, or json for one JSON object per line [$NGSHARE_S3_LOG_FORMAT]",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=env("NGSHARE_S3_METRICS_PORT"),
        help="serve Prometheus metrics at /metrics on this port instead of the main port "
        "[$NGSHARE_S3_METRICS_PORT]",
    )
    parser.add_argument(
        "--grace-period",
        type=float,
        default=env("NGSHARE_S3_GRACE_PERIOD", DEFAULT_GRACE_PERIOD),
        help="seconds that requests in flight may take to finish after SIGTERM [$NGSHARE_S3_GRACE_PERIOD]",
    )
    parser.add_argument(
        "--max-field-size",
        type=int,
        default=env("NGSHARE_S3_MAX_FIELD_SIZE", DEFAULT_MAX_FIELD_SIZE),
        help="most bytes a request's form fields other than files may hold together, answered "
        "with 413 above it [$NGSHARE_S3_MAX_FIELD_SIZE]",
    )
    parser.add_argument(
        "--upload-memory",
        type=int,
        default=env("NGSHARE_S3_UPLOAD_MEMORY", DEFAULT_UPLOAD_MEMORY),
        help="most bytes of request bodies each worker process holds in memory at once for all its "
        "uploads; further uploads wait [$NGSHARE_S3_UPLOAD_MEMORY]",
    )
    parser.add_argument(
        "--workers",
        default=env("NGSHARE_S3_WORKERS") or None,
        help="worker processes sharing the port [$NGSHARE_S3_WORKERS; default the CPUs available "
        "to the container, its CPU limit rounded up]",
    )
    parser.add_argument(
        "--release-cache-size",
        type=int,
        default=env("NGSHARE_S3_RELEASE_CACHE_SIZE", DEFAULT_RELEASE_CACHE_SIZE),
        help="bytes of encoded release answers each process keeps in memory, 0 for none "
        "[$NGSHARE_S3_RELEASE_CACHE_SIZE]",
    )
    return parser


def _workers(given: str | None) -> int:
    if given is None:
        return available_cpus()
    try:
        workers = int(given)
    except ValueError:
        workers = 0
    if workers < 1:
        raise SettingsError(f"--workers must be a whole number, 1 or more, got {given!r}")
    return workers


def validate_prefix(prefix: str) -> str:
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise SettingsError(f"--prefix must start and end with '/', got {prefix!r}")
    if prefix.startswith("/healthz/"):
        raise SettingsError(f"--prefix must not start with /healthz/, got {prefix!r}")
    if any(ch in prefix for ch in "{}"):
        raise SettingsError(f"--prefix must not contain braces, got {prefix!r}")
    return prefix


def _service_port() -> int | None:
    url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if not url:
        return None
    parsed = urlparse(url)
    try:
        return parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError as error:
        raise SettingsError(f"JUPYTERHUB_SERVICE_URL has a bad port: {url!r}") from error


def _names(listed: str) -> frozenset[str]:
    """'a, b' names a and b: spaces around a name are the list's, never the name's."""
    return frozenset(filter(None, (name.strip() for name in listed.split(","))))


def _cookie_secret(api_token: str) -> bytes:
    """Every replica derives the same key from the shared service token, so logins survive
    a request landing on another replica; NGSHARE_S3_COOKIE_SECRET overrides it."""
    explicit = os.environ.get("NGSHARE_S3_COOKIE_SECRET")
    if explicit:
        return explicit.encode()
    return hmac.new(api_token.encode(), b"ngshare_s3 cookie secret", hashlib.sha256).digest()


def parse_settings(argv: list[str] | None = None) -> Settings:
    args = build_parser().parse_args(argv)
    under_hub = "JUPYTERHUB_SERVICE_URL" in os.environ
    api_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not api_token:
        raise SettingsError(
            "JUPYTERHUB_API_TOKEN is not set: run ngshare_s3 as a JupyterHub service "
            "or export the token the Hub's service entry has"
        )
    if not args.jupyterhub_api_url:
        raise SettingsError("set JUPYTERHUB_API_URL or --jupyterhub_api_url, e.g. http://127.0.0.1:8081/hub/api")
    if urlparse(args.jupyterhub_api_url).scheme not in {"http", "https"}:
        raise SettingsError(f"--jupyterhub_api_url must be an http(s) URL, got {args.jupyterhub_api_url!r}")
    if args.max_body_size <= 0:
        raise SettingsError("--max-body-size must be a positive number of bytes")
    if int(args.max_field_size) <= 0:
        raise SettingsError("--max-field-size must be a positive number of bytes")
    if int(args.upload_memory) < MIN_UPLOAD_MEMORY:
        raise SettingsError(f"--upload-memory must be at least {MIN_UPLOAD_MEMORY} bytes")
    if args.hub_timeout <= 0:
        raise SettingsError("--hub-timeout must be a positive number of seconds")
    if args.grace_period < 0:
        raise SettingsError("--grace-period must be zero or a positive number of seconds")
    if int(args.release_cache_size) < 0:
        raise SettingsError("--release-cache-size must be zero or a positive number of bytes")
    if args.log_format not in LOG_FORMATS:
        raise SettingsError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {args.log_format!r}")
    port = args.port if args.port is not None else (_service_port() or DEFAULT_STANDALONE_PORT)
    prefix = validate_prefix(args.prefix)
    if args.metrics_port is not None and int(args.metrics_port) == int(port):
        raise SettingsError(f"--metrics-port must differ from the main port {port}")
    return Settings(
        database=args.database,
        storage=args.storage,
        prefix=prefix,
        admins=_names(args.admins),
        debug=args.debug,
        host=args.host or ("0.0.0.0" if under_hub else "127.0.0.1"),
        port=int(port),
        hub_api_url=args.jupyterhub_api_url.rstrip("/"),
        hub_api_token=api_token,
        hub_client_id=os.environ.get("JUPYTERHUB_CLIENT_ID", ""),
        service_name=os.environ.get("JUPYTERHUB_SERVICE_NAME") or "ngshare",
        post_login_url=os.environ.get("JUPYTERHUB_SERVICE_REDIRECT_URL") or prefix,
        max_body_size=int(args.max_body_size),
        hub_timeout=float(args.hub_timeout),
        require_access_scope=args.require_access_scope,
        hub_admins=args.hub_admins,
        cookie_secret=_cookie_secret(api_token),
        log_format=args.log_format,
        metrics_port=None if args.metrics_port is None else int(args.metrics_port),
        grace_period=float(args.grace_period),
        max_field_size=int(args.max_field_size),
        upload_memory=int(args.upload_memory),
        workers=_workers(args.workers),
        release_cache_size=int(args.release_cache_size),
    )
