"""A hostile client against the real binary: what every error answer says (and does not say),
a write lock held by another process, static files that must stay hidden, broken chunked
bodies, unknown sort attributes and deletes by query that would match too much.

Every error must be RFC 9457 problem+json with a stable `code` and the request's id
(`requestId`, equal to the `X-Request-Id` header), must never carry SQL, SQLite messages or
Swift error dumps, and the server must go on serving normally afterwards."""

from __future__ import annotations

import http.client
import os
import sqlite3
import time

import pytest

from microlith_e2e import assert_problem, raw_exchange

SCHEMA = """
type Todo @table @export {
    id: ID @primaryKey
    title: String!
    done: Boolean @indexed
    priority: Int @indexed
}

type Note @table @export @sealed {
    id: ID @primaryKey
    text: String
}
"""

WEB = {
    "index.html": "<h1>home</h1>",
    "real.html": "<p>real page</p>",
    "sub/a.txt": "plain a",
    "sub/.hidden": "HIDDEN FILE",
    ".env": "SECRET_TOKEN=xyz",
    ".git/config": "[remote] url=secret",
}

#: Text that must never reach a client.
LEAKS = ("BEGIN", "SQLITE", "SQLite", "sqlite", "database is locked", "Swift.", "DatabaseError", "TRANSACTION", "r_Todo")


def assert_hostile_problem(response, status: int, code: str, *fragments: str) -> dict:
    """A problem with `status` and `code`, the request id of its header, and nothing internal."""
    body = assert_problem(response, status, *fragments)
    assert body.get("code") == code, body
    request_id = response.headers.get("X-Request-Id")
    assert request_id, response.headers
    assert body.get("requestId") == request_id, (body, request_id)
    for leak in LEAKS:
        assert leak not in response.text, f"{leak!r} leaked: {response.text}"
    return body


class Connection:
    """One keep-alive connection, to show it still serves after an error."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        from microlith_e2e import Response

        self.conn.putrequest(method, path, skip_accept_encoding=True)
        headers = dict(headers or {})
        if body is not None:
            headers.setdefault("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.conn.putheader(k, v)
        self.conn.endheaders(body)
        resp = self.conn.getresponse()
        return Response(method, path, resp.status, resp.reason, resp.headers, resp.read())

    def close(self):
        self.conn.close()


@pytest.fixture(scope="module")
def server(module_factory):
    app = module_factory.app(SCHEMA, web=WEB)
    (app / "secret.txt").write_text("TOP SECRET OUTSIDE WEB")
    os.symlink("../secret.txt", app / "web" / "out.txt")
    os.symlink(str(app / "secret.txt"), app / "web" / "abs.txt")
    os.symlink("..", app / "web" / "parent")
    os.symlink("real.html", app / "web" / "page")
    os.symlink(".env", app / "web" / "env")
    return module_factory.server(app)


# -- every error: code, request id, nothing internal ------------------------------------------


def test_refusals_carry_code_and_request_id(server):
    conn = Connection(server.port)
    try:
        assert_hostile_problem(conn.request("GET", "/Nope/1"), 404, "notFound", "/Nope/1")
        r = conn.request("PUT", "/Todo/t1", b'{"title": 5}', {"Content-Type": "application/json"})
        assert_hostile_problem(r, 400, "invalidRecord", "title")
        r = conn.request("PUT", "/Todo/t1", b'{"title": ', {"Content-Type": "application/json"})
        assert_hostile_problem(r, 400, "malformedJSON")
        assert_hostile_problem(conn.request("GET", "/Todo/?priority=high"), 400, "badQuery", "priority")
        assert_hostile_problem(conn.request("GET", "/Todo/?a=zz=1"), 400, "querySyntax")
        r = conn.request("PUT", "/Todo/t1", b"<x/>", {"Content-Type": "application/xml"})
        assert_hostile_problem(r, 415, "unsupportedMediaType")
        assert_hostile_problem(conn.request("PUT", "/Todo/", b"{}"), 405, "methodNotAllowed")
        # The same connection is served normally afterwards.
        r = conn.request("PUT", "/Todo/t1", b'{"title":"ok"}', {"Content-Type": "application/json"})
        assert r.status_code in (200, 201), r
        r = conn.request("GET", "/Todo/t1")
        assert r.status_code == 200 and r.json()["title"] == "ok"
    finally:
        conn.close()


def test_request_ids_are_per_request(server):
    a = server.get("/Nope/x")
    b = server.get("/Nope/x")
    assert a.json()["requestId"] != b.json()["requestId"]
    assert a.json()["requestId"] == a.headers["X-Request-Id"]


def test_an_unexpected_failure_is_500_internal_with_the_cause_in_the_log(factory):
    # Another process corrupts a stored record; reading it fails in a way nothing maps.
    server = factory.server(factory.app(SCHEMA))
    assert server.put("/Todo/ok", json={"title": "fine"}).status_code == 201
    assert server.put("/Todo/bad", json={"title": "bad"}).status_code == 201
    with sqlite3.connect(str(server.data_dir / "data.sqlite"), isolation_level=None, timeout=5) as db:
        db.execute("UPDATE r_Todo SET data = '{not json' WHERE id = 'bad'")
    conn = Connection(server.port)
    try:
        r = conn.request("GET", "/Todo/?title=sw=b")
        body = assert_hostile_problem(r, 500, "internal")
        assert body["detail"] == f"internal error; see the server log for request {body['requestId']}", body
        assert "not json" not in r.text and "JSON" not in r.text
        # The same connection goes on, and so does everything else.
        r = conn.request("GET", "/Todo/ok")
        assert r.status_code == 200 and r.json()["title"] == "fine"
        r = conn.request("PUT", "/Todo/new", b'{"title":"new"}', {"Content-Type": "application/json"})
        assert r.status_code == 201, r
    finally:
        conn.close()
    deadline = time.monotonic() + 5
    while body["requestId"] not in "\n".join(server.stdout + server.stderr) and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next((x for x in server.stdout + server.stderr if body["requestId"] in x), "")
    assert "request failed" in line and "status=500" in line, server.logs()


# -- a write lock held by another process ------------------------------------------------------


def test_lock_held_by_another_process_is_503_and_not_ready(factory):
    # The default busy timeout (2 s): the answer is bounded by it, not by SQLite's.
    server = factory.server(factory.app(SCHEMA))
    assert server.put("/Todo/before", json={"title": "before"}).status_code == 201
    assert server.get("/ready").status_code == 200
    database = server.data_dir / "data.sqlite"
    assert database.exists(), list(server.data_dir.iterdir())
    holder = sqlite3.connect(str(database), isolation_level=None, timeout=5)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        r = server.put("/Todo/during", json={"title": "during"})
        waited = time.monotonic() - started
        body = assert_hostile_problem(r, 503, "storeBusy", "retry")
        assert r.headers["Retry-After"] == "1"
        assert waited < 5, f"the write waited {waited:.1f}s"
        ready = server.get("/ready")
        assert_hostile_problem(ready, 503, "notReady", "write lock")
        assert ready.headers.get("Retry-After")
        # Reads go on.
        assert server.get("/Todo/before").status_code == 200
        assert server.query("Todo", "done=null") is not None
        # The cause is in the log, with the request id; never in the answer.
        deadline = time.monotonic() + 5
        while body["requestId"] not in "\n".join(server.stdout + server.stderr) and time.monotonic() < deadline:
            time.sleep(0.05)
        log = "\n".join(server.stdout + server.stderr)
        assert body["requestId"] in log, server.logs()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert server.get("/ready").status_code == 200
    r = server.put("/Todo/during", json={"title": "during"})
    assert r.status_code == 201, r
    assert server.get("/Todo/during").json()["title"] == "during"


def test_busy_timeout_is_configurable(factory):
    server = factory.server(factory.app(SCHEMA), env={"MICROLITH_BUSY_TIMEOUT_MS": "100"})
    holder = sqlite3.connect(str(server.data_dir / "data.sqlite"), isolation_level=None, timeout=5)
    try:
        holder.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        assert_hostile_problem(server.put("/Todo/x", json={"title": "x"}), 503, "storeBusy")
        assert time.monotonic() - started < 1.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert server.put("/Todo/x", json={"title": "x"}).status_code == 201


# -- static files -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/.git/", "/sub/.hidden", "/%2eenv", "/env"])
def test_dotfiles_are_not_served(server, path):
    r = server.get(path)
    assert_hostile_problem(r, 404, "notFound")
    assert b"SECRET_TOKEN" not in r.content and b"secret" not in r.content and b"HIDDEN FILE" not in r.content


@pytest.mark.parametrize("path", ["/out.txt", "/abs.txt", "/parent/secret.txt", "/parent/schema.graphql"])
def test_symlinks_out_of_web_are_not_followed(server, path):
    r = server.get(path)
    assert_hostile_problem(r, 404, "notFound")
    assert b"TOP SECRET" not in r.content and b"@table" not in r.content


def test_symlink_inside_web_is_served_as_its_target(server):
    r = server.get("/page")
    assert r.status_code == 200 and r.text == "<p>real page</p>"
    assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/sub/a.txt%00.html", "/sub/a.txt%0d%0aX:y", "/sub/%1b", "/sub/a%zz.txt", "/sub/%ff.txt"])
def test_control_characters_and_bad_escapes_are_400(server, path):
    conn = Connection(server.port)
    try:
        r = conn.request("GET", path)
        assert_hostile_problem(r, 400, "badPath")
        assert b"plain a" not in r.content
        r = conn.request("GET", "/sub/a.txt")
        assert r.status_code == 200 and r.text == "plain a"
        assert r.headers["Content-Type"].startswith("text/plain")
    finally:
        conn.close()


def test_static_validators_and_head(server):
    r = server.get("/")
    assert r.status_code == 200 and r.text == "<h1>home</h1>"
    assert r.headers["Content-Length"] == str(len("<h1>home</h1>"))
    etag, modified = r.headers["ETag"], r.headers["Last-Modified"]
    assert server.get("/", headers={"If-None-Match": etag}).status_code == 304
    assert server.get("/", headers={"If-Modified-Since": modified}).status_code == 304
    h = server.head("/sub/a.txt")
    assert h.status_code == 200 and h.content == b"" and h.headers["Content-Length"] == "7"
    r = server.get("/sub")
    assert r.status_code == 301 and r.headers["Location"] == "/sub/"


# -- request bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [b"zz", b"-5", b"0x10", b"fffffffffffffffffffff"])
def test_malformed_chunked_body_is_400_not_413(server, chunk_size):
    import json

    payload = (b"PUT /Todo/chunked HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunk_size + b"\r\n{\"title\":\"c\"}\r\n0\r\n\r\n")
    status, headers, body = raw_exchange(server.port, payload)
    assert status == 400, (status, body)
    assert headers.get("content-type", "").startswith("application/problem+json"), headers
    problem = json.loads(body)
    assert problem["code"] in ("malformedBody", "badRequest"), problem
    assert problem["requestId"] == headers.get("x-request-id")
    assert server.get("/Todo/chunked").status_code == 404
    assert server.get("/health").status_code == 200


def test_chunked_body_over_the_limit_is_still_413(factory):
    server = factory.server(factory.app(SCHEMA), env={"MICROLITH_HTTP_MAX_BODY_BYTES": "64"})
    data = b'{"title":"' + b"x" * 200 + b'"}'
    payload = (b"PUT /Todo/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n" + format(len(data), "x").encode() + b"\r\n" + data + b"\r\n0\r\n\r\n")
    status, _, body = raw_exchange(server.port, payload)
    assert status == 413, body
    assert server.put("/Todo/small", json={"title": "s"}).status_code == 201


# -- queries ----------------------------------------------------------------------------------


def test_unknown_sort_attribute_of_a_sealed_table_is_400(server):
    r = server.get("/Note/?sort(+nosuch)")
    assert_hostile_problem(r, 400, "badQuery", "'nosuch'", "id, text")
    r = server.get("/Note/?nosuch=1")
    assert_hostile_problem(r, 400, "badQuery", "'nosuch'", "id, text")


def test_unknown_sort_attribute_of_an_open_table_is_warned_about(server):
    # Open tables keep undeclared attributes, and conditions on them are allowed; so is sorting,
    # but the answer says the attribute is not declared, and which ones are.
    r = server.get("/Todo/?sort(+nosuch)")
    assert r.status_code == 200, r
    warning = r.headers.get("Warning", "")
    assert "undeclared attribute 'nosuch'" in warning and "title, done, priority" in warning, warning
    assert "Warning" not in server.get("/Todo/?sort(-priority)").headers


# -- deletes by query -------------------------------------------------------------------------


def test_delete_by_query_needs_limit_to_delete_several(factory):
    server = factory.server(factory.app(SCHEMA), env={"MICROLITH_HTTP_MAX_RESULTS": "100"})
    for i in range(5):
        assert server.put(f"/Todo/d{i}", json={"title": f"t{i}", "priority": i}).status_code == 201
    for query in ("id=ne=zzz", "priority=ge=0", "title=sw=t"):
        r = server.delete(f"/Todo/?{query}")
        assert_hostile_problem(r, 400, "deleteNeedsLimit", "more than one record", "limit(100)")
        assert len(server.query("Todo")) == 5
    assert_hostile_problem(server.delete("/Todo/"), 400, "badRequest", "needs a query")
    # One match: deleted without a limit.
    r = server.delete("/Todo/?id==d0")
    assert r.status_code == 200 and r.json() == {"deleted": 1}
    # Several, with a limit: at most that many, in sort order.
    r = server.delete("/Todo/?id=ne=zzz&sort(-priority)&limit(2)")
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    assert sorted(server.ids("Todo")) == ["d1", "d2"]
    assert_hostile_problem(server.delete("/Todo/?id=ne=zzz&limit(101)"), 400, "badRequest", "limit(101)")
    r = server.delete("/Todo/?id=ne=zzz&limit(100)")
    assert r.json() == {"deleted": 2}
    assert server.query("Todo") == []
