"""Bad input of every kind gets the right 4xx/503 with a useful problem+json message, and the
server keeps serving; bad app folders (schema, microlith.yaml, seed files, flags) stop start-up
with a clear message and a non-zero exit."""

from __future__ import annotations

import http.client
import re
import socket
import time

import pytest

from microlith_e2e import assert_problem, run_microlith, serve_must_fail

SCHEMA = """
type Item @table @export {
    id: ID @primaryKey
    name: String! @indexed
    n: Int
    price: Float
    tags: [String]
    note: String
}

type Counter @table @export {
    id: Int @primaryKey
    label: String
}
"""

MAX_BODY = 200_000
MAX_QUERY = 256
MAX_RESULTS = 5
SEED = [{"id": f"seed-{i}", "name": f"seed {i}", "n": i} for i in range(8)]


@pytest.fixture(scope="module")
def server(module_factory):
    app = module_factory.app(SCHEMA, data={"Item": SEED})
    return module_factory.server(
        app,
        env={
            "MICROLITH_HTTP_MAX_BODY_BYTES": str(MAX_BODY),
            "MICROLITH_HTTP_MAX_QUERY_LENGTH": str(MAX_QUERY),
            "MICROLITH_HTTP_MAX_RESULTS": str(MAX_RESULTS),
        },
    )


# -- malformed bodies ------------------------------------------------------------------------

MALFORMED = [
    b'{"name": ',
    b"{name: 1}",
    b'{"name": "x",}',
    b'{"name": "unterminated}',
    b'{"name": "x"} trailing',
    b"nul",
    b'{"name": tru}',
    b'{"name": 01}',
    b'{"name": "\xff\xfe"}',
    b'{"name": "bad \\q escape"}',
    b"[" * 100_000,
    b'{"a":' * 30_000,
]


@pytest.mark.parametrize("body", MALFORMED, ids=[repr(b[:20]) for b in MALFORMED])
def test_malformed_json_is_400_with_offset(server, body):
    r = server.put("/Item/malformed", data=body, headers={"Content-Type": "application/json"})
    problem = assert_problem(r, 400, "malformed JSON at byte")
    assert problem["title"] == "Malformed JSON"
    assert isinstance(problem["offset"], int) and 0 <= problem["offset"] <= len(body)
    assert f"byte {problem['offset']}" in problem["detail"]
    assert server.get("/Item/malformed").status_code == 404


def test_malformed_json_offset_is_exact(server):
    body = assert_problem(server.put("/Item/m", data=b'{"name": ', headers={"Content-Type": "application/json"}), 400)
    assert body["offset"] == 9
    body = assert_problem(server.post("/Item/", data=b'{"name" "x"}', headers={"Content-Type": "application/json"}), 400)
    assert body["offset"] == 8


@pytest.mark.parametrize("body,kind", [(b"[1,2]", "array"), (b'"text"', "string"), (b"42", "number"), (b"null", "null")])
def test_body_must_be_an_object(server, body, kind):
    r = server.put("/Item/not-object", data=body, headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "must be a JSON object", kind)


def test_empty_body_is_400(server):
    assert_problem(server.put("/Item/empty", data=b"", headers={"Content-Type": "application/json"}), 400, "empty")
    assert_problem(server.post("/Item/", data=b"", headers={"Content-Type": "application/json"}), 400, "empty")
    assert_problem(server.patch("/Item/seed-1", data=b"", headers={"Content-Type": "application/json"}), 400, "empty")


def test_wrong_types_name_the_attribute(server):
    body = assert_problem(server.put("/Item/wt", json={"name": 5}), 400, "attribute 'name' must be a String")
    assert body["attribute"] == "name"
    body = assert_problem(server.post("/Item/", json={"name": "x", "price": "free"}), 400, "attribute 'price' must be a Float")
    assert body["attribute"] == "price"
    body = assert_problem(server.patch("/Item/seed-1", json={"tags": [1]}), 400, "'tags[0]'")
    assert body["attribute"] == "tags[0]"
    assert server.get("/Item/seed-1").json()["name"] == "seed 1"


# -- sizes -----------------------------------------------------------------------------------


def big_record(size: int) -> bytes:
    return b'{"name": "big", "note": "' + b"x" * size + b'"}'


def test_body_over_the_limit_is_413(server):
    body = big_record(MAX_BODY + 10)
    for method in ("PUT", "POST", "PATCH"):
        path = "/Item/" if method == "POST" else "/Item/seed-2"
        r = server.request(method, path, data=body, headers={"Content-Type": "application/json"})
        assert_problem(r, 413, f"limit of {MAX_BODY} bytes")
    assert server.get("/Item/seed-2").json()["name"] == "seed 2"


def test_body_of_exactly_the_limit_is_accepted(server):
    body = big_record(MAX_BODY - len(big_record(0)))
    assert len(body) == MAX_BODY
    r = server.put("/Item/almost-too-big", data=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r
    assert len(server.get("/Item/almost-too-big").json()["note"]) == MAX_BODY - len(big_record(0))
    assert server.delete("/Item/almost-too-big").status_code == 204
    r = server.put("/Item/one-too-many", data=body[:-2] + b'x"}', headers={"Content-Type": "application/json"})
    assert_problem(r, 413)


def test_chunked_body_over_the_limit_is_413(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        chunks = iter([b'{"name": "chunked", "note": "'] + [b"y" * 10_000] * 30 + [b'"}'])
        conn.request("PUT", "/Item/chunked", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True)
        resp = conn.getresponse()
        assert resp.status == 413
        assert resp.getheader("Content-Type").startswith("application/problem+json")
        resp.read()
    finally:
        conn.close()
    assert server.get("/Item/chunked").status_code == 404


def test_query_string_over_the_limit_is_414(server):
    query = "name=" + "a" * MAX_QUERY
    r = server.get(f"/Item/?{query}")
    assert_problem(r, 414, f"the query string is {len(query)} bytes", f"the limit is {MAX_QUERY}")
    assert_problem(server.delete(f"/Item/?{query}"), 414)
    exact = "name=" + "a" * (MAX_QUERY - 5)
    assert len(exact) == MAX_QUERY
    assert server.get(f"/Item/?{exact}").status_code == 200
    assert_problem(server.get(f"/Item/?{exact}a"), 414, f"is {MAX_QUERY + 1} bytes")


def test_too_many_results_asks_for_limit(server):
    # 8 seeded records, at most 5 per query.
    assert_problem(server.get("/Item/"), 400, f"more than {MAX_RESULTS} records", "limit(")
    assert_problem(server.get("/Item/?note=null"), 400, f"more than {MAX_RESULTS} records")
    assert_problem(server.get("/Item/?sort(-n)"), 400, f"more than {MAX_RESULTS} records")
    assert_problem(server.get("/Item/?limit(6)"), 400, "limit(6)", f"maximum of {MAX_RESULTS}")
    assert_problem(server.get("/Item/?limit(2,10)"), 400, f"maximum of {MAX_RESULTS}")
    assert len(server.query("Item", f"limit({MAX_RESULTS})")) == MAX_RESULTS
    assert len(server.query("Item", "sort(-n)&limit(3,8)")) == 5
    assert len(server.query("Item", "n=lt=number:3")) == 3


def test_delete_by_query_matching_more_than_max_results(factory):
    server = factory.server(factory.app(SCHEMA, data={"Item": SEED}), env={"MICROLITH_HTTP_MAX_RESULTS": str(MAX_RESULTS)})
    r = server.delete("/Item/?name=sw=seed")
    if r.status_code == 200:
        # Deleting returns a count, not records, so it may delete every match...
        assert r.json() == {"deleted": len(SEED)}
        assert server.get("/Item/seed-0").status_code == 404
        return
    # ...or refuse, but then the advice it gives must work.
    assert_problem(r, 400, "limit(")
    r = server.delete(f"/Item/?name=sw=seed&limit({MAX_RESULTS})")
    assert r.status_code == 200, f"the refusal said to use limit(n), but with limit({MAX_RESULTS}): {r.status_code} {r.text}"
    assert r.json() == {"deleted": MAX_RESULTS}
    assert len(server.query("Item", "")) == len(SEED) - MAX_RESULTS


# -- queries, tables, ids, content types -----------------------------------------------------


@pytest.mark.parametrize(
    "query,offset",
    [("name=", None), ("=x", 0), ("name=a&|n=1", 7), ("sort(-)", 6), ("select(a,,b)", 9), ("n=gt=1&[", 8), ("%", 0)],
)
def test_broken_queries(server, query, offset):
    r = server.get(f"/Item/?{query}")
    if offset is None:
        # An empty value is a valid comparison with the empty string.
        assert r.status_code == 200 and r.json() == []
        return
    body = assert_problem(r, 400, f"offset {offset}")
    assert body["offset"] == offset


def test_unknown_tables(server):
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        kwargs = {"json": {"a": 1}} if method in ("PUT", "PATCH") else {}
        r = server.request(method, "/Ghost/1", **kwargs)
        body = assert_problem(r, 404)
        assert "Ghost" in body["detail"] and "Counter, Item" in body["detail"]
    assert_problem(server.get("/Ghost/?a=1"), 404, "Counter, Item")
    assert_problem(server.post("/Ghost/", json={"a": 1}), 404, "'Ghost'")
    assert_problem(server.delete("/Ghost/?a=1"), 404, "'Ghost'")


@pytest.mark.parametrize("segment", ["abc", "1.5", "99999999999", "0x10", "1e3", "%20"])
def test_bad_integer_ids(server, segment):
    for method in ("GET", "PUT", "DELETE"):
        kwargs = {"json": {"label": "x"}} if method == "PUT" else {}
        r = server.request(method, f"/Counter/{segment}", **kwargs)
        assert_problem(r, 400, "is not a valid Int key for Counter")


def test_body_id_of_wrong_type(server):
    assert_problem(server.put("/Counter/1", json={"id": "one", "label": "x"}), 400, "must be a valid Int primary key", '"one"')
    body = assert_problem(server.post("/Counter/", json={"id": "one"}), 400, "'id'")
    assert body["attribute"] == "id"
    body = assert_problem(server.post("/Item/", json={"id": 17, "name": "x"}), 400, "'id'")
    assert server.get("/Counter/1").status_code == 404


def test_odd_but_valid_string_ids(server):
    r = server.put("/Item/%E2%9C%93%20ok", json={"name": "unicode"})
    assert r.status_code == 201, r
    assert r.json()["id"] == "\u2713 ok"
    assert server.get("/Item/%E2%9C%93%20ok").json()["name"] == "unicode"
    # A percent sign that starts no escape is taken literally, not a server error.
    r = server.get("/Item/%zz")
    assert r.status_code in (400, 404), r
    assert r.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("ctype", ["image/png", "text/html", "application/xml", "application/octet-stream", "multipart/form-data; boundary=z"])
def test_unsupported_content_types(server, ctype):
    for method, path in (("PUT", "/Item/ct"), ("POST", "/Item/"), ("PATCH", "/Item/seed-3")):
        r = server.request(method, path, data=b'{"name":"x"}', headers={"Content-Type": ctype})
        assert_problem(r, 415, ctype.split(";")[0])
    assert server.get("/Item/ct").status_code == 404


def test_garbage_on_the_wire_does_not_hurt_the_server(server):
    for payload in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\x03\r\n\r\n", b"PUT /Item/x HTTP/1.1\r\nContent-Length: 5\r\n\r\n{"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            try:
                reply = s.recv(4096)
            except (ConnectionResetError, socket.timeout):
                reply = b""
            if reply:
                status = int(reply.split(b" ", 2)[1])
                assert 400 <= status < 500, reply[:200]
    assert server.running
    assert server.get("/health").status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/../schema.graphql", "/%2e%2e/schema.graphql", "/..%2fschema.graphql", "/js/../../schema.graphql",
     "/%2e%2e%2f%2e%2e%2fsecret.txt", "/js/..%2f..%2f..%2fsecret.txt", "//etc/passwd"],
)
def test_static_files_cannot_escape_web(factory, path):
    app = factory.app(SCHEMA, web={"index.html": "home", "js/app.js": "js"})
    (app.parent / "secret.txt").write_text("TOP SECRET")
    server = factory.server(app)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    status = int(reply.split(b" ", 2)[1])
    assert status in (400, 403, 404), reply[:300]
    assert b"TOP SECRET" not in reply and b"@table" not in reply


def test_server_still_serves_after_all_of_it(server):
    assert server.running, server.logs()
    r = server.get("/Item/seed-0")
    assert r.status_code == 200
    assert r.json() == {"id": "seed-0", "name": "seed 0", "n": 0}
    assert server.put("/Item/after", json={"name": "after"}).status_code == 201
    assert server.query("Item", "name=after")[0]["id"] == "after"
    assert "Fatal error" not in "\n".join(server.stderr)


# -- connections -----------------------------------------------------------------------------


def test_connections_over_the_limit_get_503(factory):
    server = factory.server(factory.app(SCHEMA), env={"MICROLITH_HTTP_MAX_CONNECTIONS": "3"})
    held = []
    try:
        # Connections count from accept: three that have not sent a request yet fill the budget
        # (they are not idle keep-alive connections, so none is closed to make room).
        for _ in range(3):
            held.append(socket.create_connection(("127.0.0.1", server.port), timeout=10))
        time.sleep(0.2)
        r = server.get("/health")
        body = assert_problem(r, 503, "too many connections", "3")
        assert body["title"] == "Service Unavailable"
        assert r.headers["Retry-After"] == "1"
        # The connections already open are not slowed.
        for sock in held:
            sock.sendall(b"GET /Item/?limit(1) HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        # Now they are idle keep-alive connections: a new client gets in, the oldest idle one goes.
        r = server.get("/health")
        assert r.status_code == 200, r
        held[0].settimeout(5)
        assert held[0].recv(10) == b""
    finally:
        for sock in held:
            sock.close()
    # Once they close, new connections are served again.
    deadline = time.monotonic() + 5
    while True:
        r = server.get("/health")
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 200, r
    assert server.running


def test_default_body_limit_is_one_mebibyte(factory):
    server = factory.server(factory.app(SCHEMA))
    r = server.put("/Item/huge", data=big_record(2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "limit of 1048576 bytes")
    r = server.put("/Item/large", data=big_record(1024 * 1024 - 100), headers={"Content-Type": "application/json"})
    assert r.status_code == 201
    assert server.get("/health").status_code == 200


# -- bad app folders -------------------------------------------------------------------------

LOCATION = re.compile(r"schema\.graphql:(\d+):(\d+): error: (.+)")

BAD_SCHEMAS = [
    ("syntax", "type A @table {\n  id: ID @primaryKey\n  name String\n}\n", 3, 8, "syntax error"),
    ("unknown type", "type A @table {\n  id: ID @primaryKey\n  price: Money\n}\n", 3, 3, "unknown type 'Money'"),
    ("unknown directive", "type A @table {\n  id: ID @primaryKey\n  name: String @unique\n}\n", 3, 16, "unknown directive @unique"),
    ("no primary key", "# comment\ntype A @table {\n  name: String\n}\n", 2, 6, "has no primary key"),
    ("bad relationship", "type A @table {\n  id: ID\n  owner: B @relationship(from: ownerId)\n}\ntype B @table { id: ID }\n", 3, 3,
     "has no attribute 'ownerId'"),
    ("float key", "type A @table {\n  key: Float @primaryKey\n}\n", 2, 3, "must be ID, String, Int or Long"),
    ("duplicate type", "type A @table {\n  id: ID\n}\ntype A @table { id: ID }\n", 4, 6, "already declared at line 1"),
    ("duplicate export", 'type A @table @export(name: "X") { id: ID }\ntype B @table @export(name: "X") { id: ID }\n', 2, 6,
     "export name 'X' is already used"),
]


@pytest.mark.parametrize("name,schema,line,column,message", BAD_SCHEMAS, ids=[b[0] for b in BAD_SCHEMAS])
def test_bad_schema_fails_check_and_serve_with_location(factory, name, schema, line, column, message):
    app = factory.app(schema)
    for result in (run_microlith("check", app), serve_must_fail(app, factory.data_dir())):
        assert result.returncode != 0
        m = LOCATION.search(result.stderr)
        assert m, f"no file:line:col in {result.stderr!r}"
        assert (int(m.group(1)), int(m.group(2))) == (line, column), result.stderr
        assert message in m.group(3), result.stderr
        assert str(app / "schema.graphql") in result.stderr


def test_check_accepts_a_good_schema(factory):
    app = factory.app(SCHEMA)
    result = run_microlith("check", app)
    assert result.returncode == 0, result.stderr
    assert "data.Item: key id" in result.stdout
    assert "exported as /Item/" in result.stdout
    assert result.stdout.strip().endswith("ok")


def test_missing_app_folder_or_schema(factory, tmp_path):
    result = run_microlith("check", tmp_path / "nowhere")
    assert result.returncode != 0 and "does not exist" in result.stderr
    empty = tmp_path / "empty-app"
    empty.mkdir()
    result = serve_must_fail(empty, factory.data_dir())
    assert "schema.graphql is missing" in result.stderr


BAD_YAML = [
    ("unknown key", "http:\n  maxBodyByte: 10\n", "unknown setting 'http.maxBodyByte'"),
    ("unknown section", "cache:\n  size: 10\n", "unknown setting 'cache.size'"),
    ("not a number", "http:\n  maxResults: lots\n", "http.maxResults must be an integer"),
    ("negative", "http:\n  maxConnections: 0\n", "http.maxConnections must be an integer ≥ 1"),
    ("bad boolean", "http:\n  allowFullScans: perhaps\n", "http.allowFullScans must be true or false"),
    ("bad durability", "store:\n  durability: sometimes\n", "store.durability must be full or normal"),
    ("bad log level", "log:\n  level: loud\n", "log.level must be one of"),
    ("invalid yaml", "http: [unclosed\n", "invalid YAML"),
    ("not a mapping", "- a\n- b\n", "mapping"),
    ("list value", "http:\n  maxResults: [1, 2]\n", "http.maxResults must be a single value"),
]


@pytest.mark.parametrize("name,yaml,message", BAD_YAML, ids=[b[0] for b in BAD_YAML])
def test_bad_microlith_yaml_stops_startup(factory, name, yaml, message):
    app = factory.app(SCHEMA, yaml=yaml)
    result = serve_must_fail(app, factory.data_dir())
    assert message in result.stderr, result.stderr
    assert "microlith.yaml" in result.stderr


def test_check_also_rejects_bad_yaml(factory):
    app = factory.app(SCHEMA, yaml="http:\n  bogus: 1\n")
    result = run_microlith("check", app)
    assert result.returncode != 0
    assert "unknown setting 'http.bogus'" in result.stderr


def test_good_yaml_is_applied(factory):
    app = factory.app(SCHEMA, yaml="http:\n  maxResults: 2\n  maxQueryLength: 50\nstore:\n  durability: normal\n  cacheMB: 8\nlog:\n  level: warning\n")
    server = factory.server(app)
    for i in range(3):
        server.put(f"/Item/y{i}", json={"name": "y"})
    assert_problem(server.get("/Item/"), 400, "more than 2 records")
    assert_problem(server.get("/Item/?name=" + "z" * 50), 414, "the limit is 50")
    # log.level: warning silences the info lines (such as the start-up ones).
    assert not [line for line in server.stderr if " info " in line], server.stderr


@pytest.mark.parametrize(
    "variable,value",
    [
        ("MICROLITH_HTTP_MAX_RESULTS", "lots"),
        ("MICROLITH_HTTP_MAX_BODY_BYTES", "-1"),
        ("MICROLITH_HTTP_ALLOW_FULL_SCANS", "perhaps"),
        ("MICROLITH_DURABILITY", "sometimes"),
        ("MICROLITH_CACHE_MB", "big"),
        ("MICROLITH_LOG_LEVEL", "loud"),
    ],
)
def test_bad_environment_setting_stops_startup(factory, variable, value):
    result = serve_must_fail(factory.app(SCHEMA), factory.data_dir(), env={variable: value})
    assert variable in result.stderr and value in result.stderr, result.stderr


def test_port_in_use_stops_startup(factory):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_microlith(
            "serve", factory.app(SCHEMA), "--http-port", port, "--host", "127.0.0.1", "--data-dir", factory.data_dir()
        )
    assert result.returncode != 0
    assert "already in use" in result.stderr.lower(), result.stderr
    assert "microlith: serving" not in result.stdout


@pytest.mark.parametrize(
    "flags,message",
    [(["--durability", "sometimes"], "--durability"), (["--http-port", "70000"], "--http-port"), (["--cache-mb", "-1"], "--cache-mb")],
)
def test_bad_flags_stop_startup(factory, flags, message):
    app = factory.app(SCHEMA)
    result = run_microlith("serve", app, "--data-dir", factory.data_dir(), "--host", "127.0.0.1", *flags)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert "microlith: serving" not in result.stdout


@pytest.mark.parametrize(
    "data,message",
    [
        ({"Item": [{"id": "a", "name": "ok"}, {"id": "b", "name": 7}]}, "element 1"),
        ({"Ghost": [{"id": "a"}]}, "no table named Ghost"),
        ({"Item": '{"id": "a"}'}, "JSON array"),
        ({"Item": '[{"id": "a", '}, "malformed JSON"),
    ],
    ids=["bad record", "unknown table", "not an array", "malformed"],
)
def test_bad_seed_file_stops_startup(factory, data, message):
    app = factory.app(SCHEMA, data=data)
    result = serve_must_fail(app, factory.data_dir())
    assert message in result.stderr, result.stderr
    assert ".json" in result.stderr
