"""Structured logs and log levels per subsystem, with a real `microlith serve`: `log.format: json`
writes one JSON object per line with the request id; `PUT /_log` changes a subsystem's level
while the server runs; bad settings are refused by name."""

from __future__ import annotations

import base64
import json

from microlith_e2e import assert_problem, serve_must_fail, wait_for

SCHEMA = """
type Note @table @export {
    id: ID @primaryKey
    text: String
}
"""

ADMIN_ENV = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root-123"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root-123").decode()}


def json_lines(server) -> list[dict]:
    """Every line the server wrote to standard error, each parsed as JSON (a line that is not fails)."""
    return [json.loads(line) for line in server.stderr if line.strip()]


def lines_until_a_mark(server) -> list[dict]:
    """The lines logged so far, once a line logged now has arrived: the server's standard error is
    read by another thread, so "no such line" holds only up to a line known to come later."""
    before = len(json_lines(server))
    assert server.put("/_log", json={}, headers=ADMIN).status_code == 200  # logs "log levels changed"
    wait_for(lambda: any(l["message"] == "log levels changed" for l in json_lines(server)[before:]))
    return json_lines(server)


def test_json_lines_carry_the_request_id_and_levels_change_while_serving(factory):
    app = factory.app(SCHEMA, yaml="log:\n  format: json\n")
    server = factory.server(app, env=ADMIN_ENV)
    lines = json_lines(server)
    assert lines, "the start logs something"
    for line in lines:
        assert set(line) >= {"time", "level", "source", "message"}, line
        assert line["time"].endswith("Z") and "T" in line["time"]
    assert any(line["source"] == "MicrolithStore" and "created" in line["message"] for line in lines), lines

    # Nothing at debug yet: requests are not logged.
    r = server.put("/Note/a", json={"id": "a", "text": "x"})
    assert r.status_code == 201
    assert not any(line["message"] == "request" for line in lines_until_a_mark(server))

    # The HTTP subsystem at debug, nothing else: each request gets a line with its id.
    assert_problem(server.put("/_log", json={"levels": {"MicrolithHTTP": "debug"}}), 401, "change the log levels")
    changed = server.put("/_log", json={"levels": {"MicrolithHTTP": "debug"}}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"level": "info", "levels": {"MicrolithHTTP": "debug"}}
    r = server.get("/Note/?text=x")
    request_id = r.headers["X-Request-Id"]
    line = wait_for(lambda: next((l for l in json_lines(server) if l.get("requestId") == request_id), None))
    assert line["source"] == "MicrolithHTTP" and line["level"] == "debug" and line["message"] == "request", line
    assert line["metadata"]["status"] == "200" and line["metadata"]["path"] == "/Note/", line
    assert not any(l["level"] in ("debug", "trace") and l["source"] not in ("MicrolithHTTP",) for l in lines_until_a_mark(server))

    # Back to the base level; bad bodies are refused by name.
    assert server.put("/_log", json={"levels": {"MicrolithHTTP": None}}, headers=ADMIN).json()["levels"] == {}
    assert_problem(server.put("/_log", json={"level": "loud"}, headers=ADMIN), 400, "level must be one of")
    assert_problem(server.put("/_log", json={"levels": ["x"]}, headers=ADMIN), 400, "levels must be an object")
    assert_problem(server.put("/_log", json={"volume": 3}, headers=ADMIN), 400, "unknown member 'volume'")
    assert server.get("/_log", headers=ADMIN).json() == {"level": "info", "levels": {}}
    before = len(json_lines(server))
    server.get("/Note/a")
    server.get("/Note/?text=y")
    assert not any(l["message"] == "request" for l in lines_until_a_mark(server)[before:])


def test_levels_from_the_environment_and_bad_settings(factory, tmp_path):
    app = factory.app(SCHEMA)
    server = factory.server(app, env=dict(ADMIN_ENV, MICROLITH_LOG_LEVELS="MicrolithHTTP=debug"))
    assert server.get("/_log", headers=ADMIN).json() == {"level": "info", "levels": {"MicrolithHTTP": "debug"}}
    server.get("/Note/?text=z")
    wait_for(lambda: "request" in server.logs() and "[MicrolithHTTP]" in server.logs())

    bad = serve_must_fail(factory.app(SCHEMA, yaml="log:\n  format: xml\n"), tmp_path / "d1")
    assert "log.format must be text or json, got 'xml'" in bad.stderr
    bad = serve_must_fail(factory.app(SCHEMA, yaml="log:\n  levels:\n    MicrolithStore: chatty\n"), tmp_path / "d2")
    assert "log.levels (MicrolithStore) must be one of" in bad.stderr
