"""Hostile and slow connections (issue: connections before their first complete request were
never timed out, never counted, and a malformed first request hung forever).

Raw sockets throughout: every case asserts the status written, that the server closed the
connection, and that a normal client is served meanwhile."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from microlith_e2e import http_request

SCHEMA = """
type Todo @table @export {
    id: ID @primaryKey
    title: String
}
"""

HEADER_TIMEOUT = 2
MAX_CONNECTIONS = 24
MAX_BODY = 100_000


@pytest.fixture(scope="module")
def server(module_factory):
    yaml = (
        f"http:\n  headerTimeoutSeconds: {HEADER_TIMEOUT}\n  maxConnections: {MAX_CONNECTIONS}\n"
        f"  maxBodyBytes: {MAX_BODY}\n  minBodyBytesPerSecond: 1000\n"
    )
    return module_factory.server(module_factory.app(SCHEMA, yaml=yaml))


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool, float]:
    """Everything the server sends until it closes (True) or `timeout` passes (False)."""
    start = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return data, True, time.monotonic() - start
            data += chunk
    except socket.timeout:
        return data, False, time.monotonic() - start
    except ConnectionResetError:
        return data, True, time.monotonic() - start


def status_of(data: bytes) -> int:
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12])


def assert_served(server):
    r = http_request(server.port, "GET", "/health", timeout=5)
    assert r.status_code == 200, r.text


def problem_code(data: bytes) -> str:
    import json

    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["status"] == status_of(data) and body["detail"] and body["requestId"], body
    return body["code"]


MALFORMED = {
    "content-length with transfer-encoding": b"POST /Todo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate content-length": b"POST /Todo/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    "unknown method": b"FROB /Todo/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/0.9": b"GET /\r\n\r\n",
    "TLS ClientHello": bytes.fromhex("16030100a5010000a10303") + bytes(160),
    "raw NUL in the request line": b"GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad header name": b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_first_request_gets_400_and_close(server, name):
    sock = connect(server)
    sock.sendall(MALFORMED[name])
    data, closed, elapsed = read_until_closed(sock, 5)
    assert closed and elapsed < 3, (name, data[:200])
    assert status_of(data) == 400 and problem_code(data) == "malformedRequest", data[:300]
    assert_served(server)


@pytest.mark.parametrize("name,raw", [
    ("100 KB path", b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("100 KB header", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"),
    ("10,000 headers", b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(10_000)) + b"\r\n"),
])
def test_oversized_heads_get_431_and_close(server, name, raw):
    sock = connect(server)
    try:
        sock.sendall(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before all of it is sent
    data, closed, _ = read_until_closed(sock, 5)
    assert closed and status_of(data) == 431 and problem_code(data) == "headersTooLarge", (name, data[:300])
    assert_served(server)


def test_silent_connection_is_closed_after_the_header_timeout(server):
    sock = connect(server)
    data, closed, elapsed = read_until_closed(sock, HEADER_TIMEOUT + 5)
    assert closed and HEADER_TIMEOUT - 0.5 <= elapsed <= HEADER_TIMEOUT + 3, elapsed
    assert status_of(data) == 408 and problem_code(data) == "headerTimeout"


def test_slowloris_head_is_cut_off(server):
    sock = connect(server)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    start = time.monotonic()
    cut = False
    for i in range(len(head)):
        try:
            sock.send(head[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            cut = True
            break
        time.sleep(0.1)
        if time.monotonic() - start > HEADER_TIMEOUT + 4:
            break
    if not cut:
        data, cut, _ = read_until_closed(sock, 3)
        assert not data or status_of(data) == 408
    assert cut and time.monotonic() - start < HEADER_TIMEOUT + 4
    assert_served(server)


def test_slowloris_on_a_kept_alive_connection_is_cut_off_too(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(5)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    time.sleep(HEADER_TIMEOUT + 0.5)  # idle between requests is not the head's clock
    sock.sendall(b"GET /health HTTP/1.1\r\n")
    data, closed, elapsed = read_until_closed(sock, HEADER_TIMEOUT + 4)
    assert closed and status_of(data) == 408, data[:200]


def test_trickled_body_is_cut_off(server):
    sock = connect(server)
    sock.sendall(b"PUT /Todo/slow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000\r\n\r\n{")
    start = time.monotonic()
    closed = False
    while time.monotonic() - start < HEADER_TIMEOUT + 5:
        try:
            sock.send(b" ")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        time.sleep(0.2)
    data, closed2, _ = read_until_closed(sock, 3)
    assert closed or closed2
    if data:
        assert status_of(data) == 408 and problem_code(data) == "bodyTooSlow"
    assert http_request(server.port, "GET", "/Todo/slow").status_code == 404


def test_huge_declared_body_gets_413_before_the_body(server):
    sock = connect(server)
    sock.sendall(b"PUT /Todo/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n")
    data, closed, elapsed = read_until_closed(sock, 5)
    assert closed and elapsed < 2 and status_of(data) == 413 and problem_code(data) == "bodyTooLarge", data[:300]


def test_http10_response_closes_the_connection(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
    data, closed, elapsed = read_until_closed(sock, 5)
    assert closed and elapsed < 2 and status_of(data) == 200, data[:200]
    # With keep-alive asked for, HTTP/1.0 keeps it.
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    data, closed, _ = read_until_closed(sock, 1)
    assert not closed and status_of(data) == 200


def test_connection_budget_counts_from_accept_and_makes_room_from_idle(server):
    # Keep-alive idle connections fill the budget: a new client still gets in (the oldest idle one goes).
    idle = []
    try:
        for _ in range(MAX_CONNECTIONS):
            s = connect(server)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            idle.append(s)
        assert_served(server)
        first, closed, _ = read_until_closed(idle[0], 2)
        assert closed and first == b"", "the oldest idle connection makes room"
    finally:
        for s in idle:
            s.close()
    time.sleep(0.5)
    # Silent connections count from accept (they are not idle: their first request is awaited).
    silent = [connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)
        sock = connect(server)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data, closed, _ = read_until_closed(sock, 5)
        assert closed and status_of(data) == 503 and problem_code(data) == "connectionLimit", data[:300]
        assert b"retry-after: 1" in data.lower()
    finally:
        for s in silent:
            s.close()
    # Their places come back when they go.
    deadline = time.monotonic() + 5
    while True:
        try:
            assert_served(server)
            break
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_mqtt_connections_draw_on_the_same_budget(module_factory):
    yaml = f"http:\n  maxConnections: 8\n  headerTimeoutSeconds: 30\n"
    srv = module_factory.server(module_factory.app(SCHEMA, yaml=yaml))
    if srv.mqtt_port is None:
        pytest.skip("MQTT is off")
    mqtt = [socket.create_connection(("127.0.0.1", srv.mqtt_port), timeout=5) for _ in range(8)]
    try:
        time.sleep(0.3)
        sock = connect(srv)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        data, closed, _ = read_until_closed(sock, 5)
        assert closed and status_of(data) == 503, data[:200]
        # An MQTT connection past the budget is closed at once.
        extra = socket.create_connection(("127.0.0.1", srv.mqtt_port), timeout=5)
        _, closed, elapsed = read_until_closed(extra, 3)
        assert closed and elapsed < 2
    finally:
        for s in mqtt:
            s.close()


def test_normal_clients_are_served_during_a_slowloris_flood(server):
    stop = threading.Event()
    socks = []

    def flood():
        while not stop.is_set() and len(socks) < MAX_CONNECTIONS // 2:
            try:
                s = connect(server)
                s.send(b"GET / HTTP/1.1\r\n")
                socks.append(s)
            except OSError:
                time.sleep(0.05)

    t = threading.Thread(target=flood)
    t.start()
    try:
        for _ in range(20):
            assert_served(server)
            time.sleep(0.05)
    finally:
        stop.set()
        t.join()
        for s in socks:
            s.close()
