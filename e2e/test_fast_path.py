"""The event-loop fast path for cached records (`CachedReadHandler`): it must answer exactly as
the router does, keep pipelined responses in order, and never serve a stale record."""

from __future__ import annotations

import socket
import time

SCHEMA = """
type Note @table @export {
    id: ID @primaryKey
    text: String
    n: Int @indexed
}
"""


def read_responses(sock: socket.socket, methods: list[str]) -> list[tuple[str, dict, bytes]]:
    """Reads one HTTP/1.1 response per request method (Content-Length framed; HEAD has no body)."""
    out = []
    buffer = b""
    for method in methods:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = 0 if method == "HEAD" else int(headers.get("content-length", "0"))
        while len(buffer) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed inside a body"
            buffer += chunk
        out.append((lines[0], headers, buffer[:length]))
        buffer = buffer[length:]
    return out


def logged_by_the_router(server, request_id: str, timeout: float = 5.0) -> bool:
    """Whether the router's request log (debug level) has a line for `request_id` (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if request_id in server.logs():
            return True
        time.sleep(0.05)
    return False


def test_a_cache_hit_answers_like_the_router(factory):
    app = factory.app(SCHEMA)
    # At debug level the router logs every request it answers, with its id; the fast path logs none.
    server = factory.server(app, env={"MICROLITH_LOG_LEVEL": "debug"})
    assert server.put("/Note/a", json={"text": "hello", "n": 1}).status_code == 201
    hit = server.get("/Note/a")  # cached since the write: the fast path
    after = server.get("/Note/?n==1")  # a query: the router
    assert after.status_code == 200
    assert logged_by_the_router(server, after.headers["x-request-id"]), "the router's request log is missing\n" + server.logs()
    # Log lines come in order, so the hit's line (were it the router's) would be there by now.
    assert hit.headers["x-request-id"] not in server.logs(), "the cache hit was answered by the router, not the fast path"
    server.restart()  # empty cache: the next read goes through the router and SQLite
    miss = server.get("/Note/a")
    assert logged_by_the_router(server, miss.headers["x-request-id"]), "the miss was not answered by the router"
    assert miss.status_code == hit.status_code == 200
    assert miss.content == hit.content
    drop = {"date", "x-request-id"}  # different on every response; both carry one (checked below)
    assert {k.lower(): v for k, v in miss.headers.items() if k.lower() not in drop} == {
        k.lower(): v for k, v in hit.headers.items() if k.lower() not in drop
    }
    assert miss.headers.get("x-request-id") and hit.headers.get("x-request-id")
    assert miss.headers.get("x-request-id") != hit.headers.get("x-request-id")
    assert "date" in {k.lower() for k in hit.headers}
    etag = hit.headers["ETag"]
    not_modified = server.get("/Note/a", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    head = server.head("/Note/a")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(hit.content))


def test_pipelined_requests_keep_their_order(factory):
    server = factory.server(factory.app(SCHEMA))
    for i in range(3):
        assert server.put(f"/Note/{i}", json={"text": f"t{i}", "n": i}).status_code == 201
    requests = [
        "GET /Note/0 HTTP/1.1",  # fast path
        "GET /Note/?n=ge=1&sort(n) HTTP/1.1",  # router (a query)
        "GET /Note/1 HTTP/1.1",  # fast path, but must wait for the query's answer
        "GET /Note/missing HTTP/1.1",  # router (404)
        "HEAD /Note/2 HTTP/1.1",
        "GET /Note/2 HTTP/1.1",
    ]
    payload = "".join(f"{line}\r\nHost: x\r\n\r\n" for line in requests).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(payload)
        responses = read_responses(sock, [r.split()[0] for r in requests])
    statuses = [r[0].split()[1] for r in responses]
    assert statuses == ["200", "200", "200", "404", "200", "200"]
    assert b'"t0"' in responses[0][2]
    assert responses[1][2].startswith(b"[") and b'"t1"' in responses[1][2] and b'"t2"' in responses[1][2]
    assert b'"t1"' in responses[2][2] and not responses[2][2].startswith(b"[")
    assert responses[3][1]["content-type"] == "application/problem+json"
    assert responses[4][2] == b""
    assert b'"t2"' in responses[5][2]


def test_a_write_is_visible_to_the_next_read_at_once(factory):
    server = factory.server(factory.app(SCHEMA))
    etags = set()
    for i in range(50):
        assert server.put("/Note/x", json={"text": f"v{i}", "n": i}).status_code in (200, 201)
        r = server.get("/Note/x")
        assert r.json()["text"] == f"v{i}"
        etags.add(r.headers["ETag"])
    assert len(etags) == 50
    assert server.delete("/Note/x").status_code == 204
    assert server.get("/Note/x").status_code == 404


def test_connection_close_is_honoured(factory):
    server = factory.server(factory.app(SCHEMA))
    assert server.put("/Note/c", json={"text": "c"}).status_code == 201
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /Note/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        (status, headers, body), = read_responses(sock, ["GET"])
        assert status.split()[1] == "200" and b'"c"' in body
        assert sock.recv(1) == b"", "the server must close the connection after Connection: close"


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_request_that_closes_gets_connection_close_and_nothing_after_it(factory):
    # Fast path (a hit on a fresh connection) and router (a query) alike: the response says
    # `Connection: close`, then the connection ends; a request sent after it is not answered.
    server = factory.server(factory.app(SCHEMA))
    assert server.put("/Note/c", json={"text": "c", "n": 1}).status_code == 201
    for target, marker in (("/Note/c", b'{"id":"c"'), ("/Note/?n=1", b"[")):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /Note/c HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = read_all(sock)
        assert data.count(b"HTTP/1.1 ") == 1, data
        head, body = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"\r\nconnection: close" in head.lower(), head
        assert body.startswith(marker), body


def test_keep_alive_hits_on_a_fresh_connection_are_answered_in_order(factory):
    # A connection whose requests are all hits is served without the router; a miss later on
    # the same connection hands it over without reordering anything.
    server = factory.server(factory.app(SCHEMA))
    for i in range(2):
        assert server.put(f"/Note/{i}", json={"text": f"t{i}", "n": i}).status_code == 201
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for i in range(2):
            sock.sendall(f"GET /Note/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            (status, _, body), = read_responses(sock, ["GET"])
            assert status.split()[1] == "200" and f'"t{i}"'.encode() in body
        sock.sendall(b"GET /Note/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /Note/nope HTTP/1.1\r\nHost: x\r\n\r\nGET /Note/0 HTTP/1.1\r\nHost: x\r\n\r\n")
        responses = read_responses(sock, ["GET", "GET", "GET"])
    assert [r[0].split()[1] for r in responses] == ["200", "404", "200"]
    assert b'"t1"' in responses[0][2] and b'"t0"' in responses[2][2]
