"""The OpenAPI description in the package: a valid OpenAPI 3.1 document that describes exactly
the routes the service serves, with the same methods, so that neither can drift from the other."""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web
from openapi_spec_validator import validate

from ngshare_s3.http import pages
from ngshare_s3.http.routes import add_routes

METHODS = {"get", "post", "delete", "put", "patch", "head", "options"}


def packaged_description() -> dict:
    return json.loads(resources.files("ngshare_s3.http").joinpath("openapi.json").read_text("utf-8"))


def served_routes(prefix: str, metrics: bool) -> set[tuple[str, str]]:
    app = web.Application()
    add_routes(app, prefix, metrics=metrics)
    routes = set()
    for route in app.router.routes():
        template = route.resource.get_info().get("formatter") or route.resource.get_info().get("path")
        routes.add((route.method.lower(), template))
    return routes


def described_routes(document: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items() for method in item if method in METHODS}


def test_the_packaged_description_is_valid_openapi_3_1():
    document = packaged_description()
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_every_route_is_described_and_nothing_else():
    assert described_routes(packaged_description()) == served_routes(pages.DESCRIBED_PREFIX, metrics=True)


def test_the_served_description_follows_the_prefix_and_the_metrics_port():
    for prefix, metrics in (("/api/", True), ("/hub/services/exchange/", False)):
        document = json.loads(pages.api_description(prefix, metrics))
        validate(document)
        assert described_routes(document) == served_routes(prefix, metrics)


def test_every_operation_describes_its_failures_with_the_error_envelope():
    document = packaged_description()
    envelope = document["components"]["schemas"]["Failure"]
    assert envelope["required"] == ["success", "message"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")) and path != "/healthz" and not path.endswith("/healthz"):
                    assert answer.get("$ref", "").startswith("#/components/responses/"), (method, path, status)
