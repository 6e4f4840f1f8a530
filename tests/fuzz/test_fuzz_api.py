"""Schemathesis against the live service: for each role (admin, instructor, student, outsider,
and a caller without a token or with a forged one), generated requests to every operation of
the OpenAPI description the service serves, each answer checked against it (no 5xx, a
described status code, content type, body schema and headers).

The run is bounded (MAX_EXAMPLES per operation and role, about 3,500 requests in all, two minutes
on two cores; NGSHARE_FUZZ_EXAMPLES=40 makes a longer search). Generated ids, timestamps and uploads are often the classroom's real ones, so that
requests get past the 404s; after a call that may have changed the classroom, it is put back.
The service is called at its own address, as its root routes are not behind the Hub's proxy;
the tokens are real Hub tokens, checked by the Hub."""

from __future__ import annotations

import copy
import os
import secrets
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from .classroom import (
    ASSIGNMENT, COURSE, FEEDBACK, INSTRUCTOR, OUTSIDER, PREFIX, RELEASE, ROLES, STUDENT, SUBMISSION,
    LiveExchange, start_live_exchange,
)
from .test_api_description import packaged_description

MAX_EXAMPLES = int(os.environ.get("NGSHARE_FUZZ_EXAMPLES", "10"))
# Left out: negative_data_rejection, as the service ignores parameters it does not know (ngshare
# does, and its clients send extra ones).
CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_schema_conformance, response_headers_conformance, unsupported_method,
]
# Calls after which the classroom may differ from what the next cases expect.
CHANGES_CLASSROOM = ("DELETE", "POST instructor", "POST student")  # "POST student" covers "POST students"
ANSWERS: Counter = Counter()  # (role, method, status): how many cases got that answer
ANONYMOUS, FORGED = "anonymous", "forged"
FORGED_TOKEN = secrets.token_hex(16)  # no Hub user has it
SUBMITTED = "(the classroom's submission)"  # stands for its timestamp, known once it is made


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> LiveExchange:
    exchange = start_live_exchange(tmp_path_factory.mktemp("fuzz"))
    try:
        yield exchange
    finally:
        exchange.hub.stop()
        print(f"\nSchemathesis cases that passed every check: {sum(ANSWERS.values())}")
        for key, count in sorted(ANSWERS.items()):
            print(*key, count)


def either(real_values: list, schema: dict) -> dict:
    """The schema as described, or one of the classroom's real values."""
    return {"anyOf": [{"enum": real_values}, schema]}


def aimed_at_classroom(document: dict) -> dict:
    """The description with path ids, timestamps and uploads that can be the classroom's real
    ones. Only what is generated changes: answers are checked against the description as is."""
    document = copy.deepcopy(document)
    del document["security"]  # each test sends its role's token; Schemathesis would drop it at times
    components = document["components"]
    parameters = components["parameters"]
    for name, values in (("course", [COURSE]), ("assignment", [ASSIGNMENT]),
                         ("user", [STUDENT, INSTRUCTOR, OUTSIDER, ROLES["admin"]])):
        # Schemathesis puts a `/` in an id into the URL as is, not as %2F: a route of its own
        generated = {**parameters[name]["schema"], "pattern": "^[^/]+$"}
        parameters[name]["schema"] = either(values, generated)
    files = components["schemas"]["FilesField"]
    components["schemas"]["FilesField"] = either([RELEASE, SUBMISSION, FEEDBACK, "[]"], files)
    for item in document["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "timestamp":
                    parameter["schema"] = either([SUBMITTED], parameter["schema"])
            form = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
            if form and "timestamp" in form["schema"]["properties"]:
                form["schema"]["properties"]["timestamp"] = either([SUBMITTED], {"type": "string"})
    return document


def with_real_timestamp(values: dict | None, timestamp: str) -> None:
    for name, value in (values or {}).items():
        if value == SUBMITTED:
            values[name] = timestamp


# The packaged description, which the service serves unchanged under its default prefix (checked
# below); loaded at import because Schemathesis' lazy loader does not run on this pytest.
schema = schemathesis.openapi.from_dict(aimed_at_classroom(packaged_description()))


def test_the_service_serves_its_description_without_a_token(live):
    response = requests.get(f"{live.service_url}{PREFIX}openapi.json", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == packaged_description()


def test_a_405_names_the_allowed_methods(live):
    response = requests.request("TRACE", f"{live.service_url}{PREFIX}courses", timeout=30)
    assert response.status_code == 405
    assert response.headers.get("Allow") == "GET"


def credentials(live: LiveExchange, role: str) -> dict[str, str]:
    """The role's token, a token no Hub user has, or none."""
    if role == ANONYMOUS:
        return {}
    token = FORGED_TOKEN if role == FORGED else live.tokens[role]
    return {"Authorization": f"token {token}"}


def needs_a_token(case) -> bool:
    return case.operation.definition.raw.get("security") != []


@pytest.mark.parametrize("role", [*ROLES, ANONYMOUS, FORGED])  # also gives each operation an id of its own
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_description(case, role, live):
    """Without a valid token, nothing that needs one may succeed."""
    with_real_timestamp(case.query, live.facts["timestamp"])
    with_real_timestamp(case.body if isinstance(case.body, dict) else None, live.facts["timestamp"])
    try:
        response = case.call_and_validate(
            base_url=live.service_url, headers=credentials(live, role), checks=CHECKS, allow_redirects=False,
        )
        ANSWERS[role, case.method, response.status_code] += 1
        if role in (ANONYMOUS, FORGED) and needs_a_token(case):
            assert not 200 <= response.status_code < 300, f"{case.method} {case.formatted_path} without a valid token"
    finally:
        operation = f"{case.method} {case.path.removeprefix(PREFIX).split('/')[0]}"
        if operation.startswith(CHANGES_CLASSROOM):
            live.restore()
