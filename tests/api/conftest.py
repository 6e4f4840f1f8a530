"""Fixtures of the API suite: the service built in-process on each backend pair, a stand-in
for the Hub's token check on loopback, and the `api` client."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Awaitable, Callable

import pytest

from .support import ADMIN, CLIENT_ID, PREFIX, SERVICE_TOKEN, Api, Classroom, FakeHub, set_up_classroom


def _embedded(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path}/ngshare.db", str(tmp_path / "files")


def _mongodb_and_s3(s3_fixture: str) -> Callable[[pytest.FixtureRequest, Path], tuple[str, str]]:
    """A fresh MongoDB database and a fresh prefix of a real S3 server's bucket; the AWS
    environment points at that server for the test (and for server processes it starts)."""

    def pair(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
        server = request.getfixturevalue(s3_fixture)
        request.getfixturevalue("s3_environment")(server)
        return request.getfixturevalue("mongodb_url"), server.new_location()

    return pair


# Each entry gives the (database, storage) pair the service opens for one test: fresh and
# private to that test. An entry may ask `request.getfixturevalue(...)` for a running server.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], tuple[str, str]]] = {
    "embedded": _embedded,
    "mongodb+minio": _mongodb_and_s3("minio_server"),
    "mongodb+moto": _mongodb_and_s3("moto_server"),
}

# Which backends a test runs on. Most of what the API does (authentication, permissions, form
# parsing, routing) happens above the stores, so a test runs on the embedded pair unless it
# asks for more with the `backends` marker, on a test or a module:
#     pytestmark = pytest.mark.backends("embedded", "mongodb+minio")
# Tests of what the stores keep ask for MongoDB + MinIO as well; moto adds nothing here that
# the object store contract suite (tests/stores) does not already check on it.
DEFAULT_BACKENDS = ("embedded",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames or not _uses_the_shared_backend_fixture(metafunc):
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = marker.args if marker else DEFAULT_BACKENDS
    if not names or not set(names) <= set(BACKENDS):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: backends{names} must name some of {sorted(BACKENDS)}")
    metafunc.parametrize("backend", names, indirect=True, ids=names)


def _uses_the_shared_backend_fixture(metafunc: pytest.Metafunc) -> bool:
    """False where a module defines its own `backend` (the closest definition wins)."""
    definitions = metafunc.definition._fixtureinfo.name2fixturedefs.get("backend", ())
    return bool(definitions) and definitions[-1].func is backend.__wrapped__


@pytest.fixture
def backend(request, tmp_path) -> tuple[str, str]:
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
async def fake_hub(aiohttp_server):
    hub = FakeHub()
    server = await aiohttp_server(hub.make_app())
    hub.url = str(server.make_url("")).rstrip("/")
    yield hub
    hub.release_hanging.set()


@pytest.fixture
def base_settings(backend, fake_hub):
    from ngshare_s3.settings import Settings

    database, storage = backend
    return Settings(
        database=database,
        storage=storage,
        prefix=PREFIX,
        admins=frozenset({ADMIN}),
        debug=False,
        hub_api_url=f"{fake_hub.url}/hub/api",
        hub_api_token=SERVICE_TOKEN,
        hub_client_id=CLIENT_ID,
        post_login_url=PREFIX,
        max_body_size=1 << 30,
        # Generous, so that a slow moment of a busy test machine is not taken for a Hub outage;
        # the tests of the timeout itself set their own.
        hub_timeout=30.0,
        cookie_secret=b"k" * 32,
    )


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
def make_api(aiohttp_client, fake_hub, base_settings) -> MakeApi:
    """Builds a service on the test's backend; keyword arguments override settings. Several
    services built in one test share the backend, like replicas do."""

    async def build(**overrides) -> Api:
        from ngshare_s3.app import make_app

        settings = dataclasses.replace(base_settings, **overrides)
        app = make_app(settings)
        if inspect.isawaitable(app):
            app = await app
        client = await aiohttp_client(app)
        return Api(client, fake_hub, settings)

    return build


@pytest.fixture
async def api(make_api) -> Api:
    return await make_api()


@pytest.fixture
async def debug_api(make_api) -> Api:
    return await make_api(debug=True)


@pytest.fixture
async def classroom(api) -> Classroom:
    return await set_up_classroom(api)
