"""Schemathesis against a running server's /openapi.json (issue 14): every table operation is fuzzed
with data that fits the schema and data that does not, as three callers: anonymous, a super user
over HTTP Basic, and a limited user with a bearer token from POST /_auth/token. The app has two
tables of varied attribute types and a roles.yaml that grants, hides and makes read-only.

Checked on every answer: no 5xx (`not_a_server_error`); the status is one the document lists, the
content type and headers are the declared ones, and the body fits the declared schema (for data
that does not fit the schema, only no 5xx, the content type and the body). The run is bounded
(a few dozen examples per operation, derandomized) so the file takes well under two minutes.

Refusals by roles.yaml (401/403) are also checked to fit the caller: a 401 problem for the
anonymous caller, a 403 one for a signed-in user.
"""

from __future__ import annotations

import base64
import os

import pytest

try:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )
except ImportError as e:  # a missing tool is a failure of the set-up, never a skip
    raise ImportError("schemathesis is needed: pip install -r e2e/requirements.txt") from e

from microlith_e2e import http_request

#: Examples per operation, caller and mode (MICROLITH_E2E_SCHEMATHESIS_EXAMPLES raises it for a longer hunt).
EXAMPLES = int(os.environ.get("MICROLITH_E2E_SCHEMATHESIS_EXAMPLES", "25"))

SCHEMA = """
enum Color { RED GREEN BLUE }

type Size {
    width: Float!
    height: Float
    labels: [String]
}

type Product @table @export {
    id: ID @primaryKey
    name: String! @indexed
    price: Float @indexed
    stock: Int
    views: Long
    active: Boolean
    released: Date
    tags: [String] @indexed
    color: Color
    size: Size
    extra: Any
    cost: Float
    created: Long @createdTime
    updated: Date @updatedTime
}

type Counter @table @export {
    id: Int @primaryKey
    label: String @indexed
    hits: Long
}
"""

ROLES = """
anonymous:
  tables:
    Product:
      verbs: [read, insert, update, subscribe]
      hide: [cost]
      readOnly: [price]
    Counter: read
clerk:
  tables:
    Product: [read, update, delete]
    Counter:
      verbs: [read, insert, update, delete]
      readOnly: [hits]
admin:
  super_user: true
"""

DATA = {
    "Product": [
        {"id": "p1", "name": "lamp", "price": 12.5, "stock": 3, "views": 9000000000, "active": True,
         "released": "2024-05-01T00:00:00Z", "tags": ["home", "light"], "color": "RED",
         "size": {"width": 1.5, "height": 2, "labels": ["a"]}, "extra": {"any": [1, "x"]}, "cost": 4.25},
        {"id": "p2", "name": "desk", "price": 99.0, "stock": 0, "tags": [], "cost": 50.0},
    ],
    "Counter": [{"id": 1, "label": "one", "hits": 10}, {"id": 2, "label": "two", "hits": 0}],
}
KNOWN_IDS = {"Product": "p1", "Counter": 1}

ROOT, ROOT_PASSWORD = "root", "pw-root-fuzz"
CLERK, CLERK_PASSWORD = "cole", "pw-cole-fuzz"

#: Every exported table's operations, as the document must describe them.
OPERATIONS = [(method, f"/{table}/") for table in KNOWN_IDS for method in ("GET", "POST", "DELETE")]
OPERATIONS += [(method, f"/{table}/{{id}}") for table in KNOWN_IDS for method in ("GET", "PUT", "PATCH", "DELETE")]
CALLERS = ("anonymous", "basic-super-user", "bearer-clerk")

POSITIVE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
                   response_schema_conformance]
#: For data that does not fit the schema the status is the server's to choose (a 4xx); the answer must still be
#: no 5xx, and a declared content type and body.
NEGATIVE_CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api(module_factory):
    app = module_factory.app(SCHEMA, data=DATA)
    (app / "roles.yaml").write_text(ROLES)
    server = module_factory.server(app, env={"MICROLITH_ADMIN_USER": ROOT, "MICROLITH_ADMIN_PASSWORD": ROOT_PASSWORD})
    root = {"Authorization": "Basic " + base64.b64encode(f"{ROOT}:{ROOT_PASSWORD}".encode()).decode()}
    made = server.post("/_users", json={"name": CLERK, "password": CLERK_PASSWORD, "roles": ["clerk"]}, headers=root)
    assert made.status_code == 201, made
    signed_in = server.post("/_auth/token", json={"username": CLERK, "password": CLERK_PASSWORD})
    assert signed_in.status_code == 200, signed_in
    document = server.get("/openapi.json")
    assert document.status_code == 200, document
    yield {
        "server": server,
        "document": document.json(),
        "schema": schemathesis.openapi.from_dict(document.json()),
        "base_url": server.base_url,
        "headers": {
            "anonymous": {},
            "basic-super-user": root,
            "bearer-clerk": {"Authorization": f"Bearer {signed_in.json()['access_token']}"},
        },
    }
    assert server.running, "microlith died under schemathesis\n" + server.logs()


def header(response, name: str) -> str:
    return (response.headers.get(name.lower()) or [""])[0]  # schemathesis: lower-case names, lists of values


def refusal_problem(response, caller: str) -> str:
    """What is wrong with a refusal by roles.yaml (401/403): its status must fit the caller (401 without
    credentials, 403 for a signed-in user) and its body be a problem; "" when nothing is."""
    status = response.status_code
    if status not in (401, 403):
        return ""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict) or any(k not in body for k in ("title", "status", "detail", "code")) or body["status"] != status:
        return f"{status} answered with the body {body}"
    if status != (401 if caller == "anonymous" else 403):
        return f"{caller} refused with {status}: {body}"
    return ""


def flatten(error: BaseException) -> list[Failure]:
    if isinstance(error, FailureGroup):
        return [f for e in error.exceptions for f in flatten(e)]
    return [error] if isinstance(error, Failure) else []


def fuzz(api, caller: str, method: str, path: str, mode) -> dict:
    """Runs the operation's examples; returns the distinct failures: (title, status) -> report."""
    schema, base_url, headers = api["schema"], api["base_url"], api["headers"][caller]
    operation = schema[path][method]
    checks = POSITIVE_CHECKS if mode == GenerationMode.POSITIVE else NEGATIVE_CHECKS
    failures: dict = {}
    strategy = operation.as_strategy(generation_mode=mode)
    if "{id}" in path:
        # Some examples name a record that exists, so reads and writes get past 404.
        table = path.split("/")[1]
        strategy = strategy | operation.as_strategy(generation_mode=mode, path_parameters={"id": KNOWN_IDS[table]})

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        response = case.call(base_url=base_url, headers=headers, timeout=15)
        problem = refusal_problem(response, caller)
        if problem:
            failures.setdefault(("refusal", response.status_code), f"{problem}\n    {case.as_curl_command(headers, base_url=base_url)}")
            return
        try:
            case.validate_response(response, checks=checks, headers=headers, transport_kwargs={"base_url": base_url})
        except (Failure, FailureGroup) as error:
            for failure in flatten(error) or [error]:
                key = (getattr(failure, "title", type(failure).__name__), response.status_code)
                failures.setdefault(key, (
                    f"{getattr(failure, 'message', failure)}\n    answered {response.status_code}: {response.text[:300]}\n"
                    f"    {case.as_curl_command(headers, base_url=base_url)}"))

    try:
        run()
    except Unsatisfiable:
        if mode == GenerationMode.POSITIVE:
            raise
        pytest.skip(f"schemathesis makes no data that breaks the schema of {method} {path}")
    return failures


def report(failures: dict) -> str:
    return "\n".join(f"- {title} ({status}): {text}" for (title, status), text in failures.items())


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_answers_conform_to_the_document(api, caller, method, path):
    """Data that fits the schema: no 5xx, and every answer as the document describes it."""
    failures = fuzz(api, caller, method, path, GenerationMode.POSITIVE)
    assert not failures, f"{method} {path} as {caller}:\n{report(failures)}"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method,path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_data_that_does_not_fit_gets_no_server_error(api, caller, method, path):
    """Data that does not fit the schema: refused without a 5xx, with a declared content type and body."""
    failures = fuzz(api, caller, method, path, GenerationMode.NEGATIVE)
    assert not failures, f"{method} {path} as {caller} (negative data):\n{report(failures)}"


def test_the_document_describes_every_table_operation(api):
    described = {(m.upper(), p) for p, ops in api["document"]["paths"].items() for m in ops if m != "parameters"}
    assert set(OPERATIONS) <= described, sorted(set(OPERATIONS) - described)


def test_the_answers_the_document_lists_below_are_what_the_server_gives(api):
    """Refusals, a taken key and an invalid key, reproduced on purpose (the document tests below stand on real answers)."""
    server, headers = api["server"], api["headers"]
    made = http_request(server.port, "PUT", "/Counter/770077", json={"label": "taken"}, headers=headers["basic-super-user"])
    assert made.status_code in (200, 201), made
    cases = [
        ("POST", "/Counter/", {"id": 770077}, "basic-super-user", 409, "alreadyExists"),
        ("GET", "/Product/%01x", None, "basic-super-user", 400, "invalidID"),
        ("DELETE", "/Product/%01x", None, "basic-super-user", 400, "invalidID"),
        ("DELETE", "/Counter/1", None, "anonymous", 401, "unauthorized"),
        ("POST", "/Product/", {"name": "x"}, "bearer-clerk", 403, "forbidden"),
    ]
    for method, path, body, caller, status, code in cases:
        kwargs = {"json": body} if body is not None else {}
        r = http_request(server.port, method, path, headers=headers[caller], **kwargs)
        assert r.status_code == status and r.json()["code"] == code, (method, path, caller, r)


def documented(api, method: str, path: str) -> set:
    return set(api["document"]["paths"][path][method.lower()]["responses"])


def test_table_operations_document_their_refusals(api):
    """With roles.yaml, every table operation may answer 401 (no credentials) or 403 (a user whose roles
    do not allow it): the document must say so, as it does for module operations."""
    missing = [f"{m} {p}: {code}" for m, p in OPERATIONS for code in ("401", "403") if code not in documented(api, m, p)]
    assert not missing, missing


def test_a_create_naming_a_taken_key_is_documented(api):
    missing = [f"POST {p}" for m, p in OPERATIONS if m == "POST" and "409" not in documented(api, m, p)]
    assert not missing, missing


def test_an_invalid_key_is_documented_on_every_record_operation(api):
    missing = [f"{m} {p}" for m, p in OPERATIONS if "{id}" in p and "400" not in documented(api, m, p)]
    assert not missing, missing
