"""Hostile and slow connections (issue: connections before their first complete request were
never timed out, never counted, and a malformed first request hung forever).

Raw sockets throughout: every case asserts the status written, that the server closed the
connection, and that a normal client is served meanwhile."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time

import pytest

from microlith_e2e import MicrolithServer, http_request, rss_kib
from mqtt_helpers import RawClient

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


@pytest.mark.parametrize("requests", [
    pytest.param([], id="nothing sent"),
    pytest.param([b"GET /Todo/half HTTP/1.1\r\nHost: x\r\n\r\n"] * 2, id="answered from the cache"),
    pytest.param([b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"], id="answered by the router"),
    pytest.param([b"GET /Todo/half HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"], id="both"),
])
def test_a_peer_that_closes_its_side_is_answered_and_closed_at_once(server, requests):
    # The server allows half-closure; a client that sends its requests and shuts down its writing
    # side still gets every answer, then the server closes too, at once: not after the idle
    # timeout (60 s here), holding a descriptor, a connection slot and a task meanwhile.
    assert http_request(server.port, "PUT", "/Todo/half", json={"title": "t"}, timeout=5).status_code in (200, 201, 204)
    sock = connect(server)
    for request in requests:
        sock.sendall(request)
    sock.shutdown(socket.SHUT_WR)
    data, closed, elapsed = read_until_closed(sock, 5)
    assert closed and elapsed < 1.0, (closed, elapsed, data[:300])
    assert data.count(b"HTTP/1.1 200 OK") == len(requests), data[:600]
    sock.close()
    assert_served(server)


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
    yaml = "http:\n  maxConnections: 8\n  headerTimeoutSeconds: 30\n"
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
        # An MQTT connection past the budget has its CONNECT answered with a refusal (MQTT 5: 0x89
        # Server busy), then is closed; one that says nothing is closed within about 2 s.
        answered = RawClient(srv.mqtt_port)
        body = answered.connect("past-the-budget", version=5)[2]
        assert body[1] == 0x89, body
        assert answered.wait_closed(3) == []
        extra = socket.create_connection(("127.0.0.1", srv.mqtt_port), timeout=5)
        _, closed, elapsed = read_until_closed(extra, 5)
        assert closed and elapsed < 3.5
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


def test_a_slowloris_flood_is_bounded_and_cleared(module_factory):
    """500 connections trickling heads: memory stays bounded, normal clients are served
    throughout, and every flood connection is closed by the header deadline."""
    srv = module_factory.server(module_factory.app(SCHEMA, yaml="http:\n  headerTimeoutSeconds: 3\n"))
    assert_served(srv)
    before = rss_kib(srv.process.pid)
    flood = []
    for _ in range(500):
        s = connect(srv)
        s.send(b"GET /health HTTP/1.1\r\nX-Slow: ")
        flood.append(s)
    for _ in range(10):
        assert_served(srv)
        for s in flood[::25]:
            try:
                s.send(b"a")
            except OSError:
                pass
        time.sleep(0.1)
    grown_mb = (rss_kib(srv.process.pid) - before) / 1024
    assert grown_mb < 60, f"RSS grew {grown_mb:.1f} MB for 500 slow connections"
    time.sleep(3.5)
    closed = 0
    for s in flood:
        data, was_closed, _ = read_until_closed(s, 0.5)
        closed += was_closed
        s.close()
    assert closed == len(flood), f"{len(flood) - closed} flood connections still open past the deadline"
    assert_served(srv)


class LowFileLimitServer(MicrolithServer):
    """A server started under an open-file limit of 256 (soft and hard)."""

    def command(self, port: int) -> list[str]:
        return ["prlimit", "--nofile=256:256", "--"] + super().command(port)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_running_out_of_file_descriptors_is_not_reached(module_factory, tmp_path):
    """Silent sockets on both ports past a 256-file limit: the budget (limit − reserve) refuses
    the excess at once, the server answers, does not spin, and serves again when they go."""
    srv = LowFileLimitServer(module_factory.app(SCHEMA), tmp_path / "data", extra_args=("--mqtt-port", "0"))
    module_factory.servers.append(srv)
    srv.start()
    assert "lowered from 4096 to 128" in srv.logs()
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[0]),
                                                resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    flood = []
    try:
        for i in range(300):
            port = srv.port if i % 2 else srv.mqtt_port
            flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        r = http_request(srv.port, "GET", "/health", timeout=5)
        assert r.status_code == 503 and "too many connections" in r.text, r.text
        spent = cpu_seconds(srv.process.pid)
        time.sleep(1.0)
        assert cpu_seconds(srv.process.pid) - spent < 0.3, "the server spins while the budget is spent"
    finally:
        for s in flood:
            s.close()
    deadline = time.monotonic() + 5
    while True:
        r = http_request(srv.port, "GET", "/health", timeout=5)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text


def listen_backlog(port: int) -> int:
    """The accept-queue length of the socket listening on `port` (ss's Send-Q for a listener)."""
    import subprocess

    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines() if line.strip()]
    assert rows, f"no listening socket on port {port}: {out!r}"
    return int(rows[0][2])


def test_listen_backlog_holds_a_burst_of_connections(factory):
    """A burst of new connections must not overflow the kernel's accept queue (its handshakes
    would be dropped and retried a second later): 4,096 by default, capped by somaxconn;
    `http.backlog` sets it."""
    with open("/proc/sys/net/core/somaxconn") as f:
        somaxconn = int(f.read())
    default = factory.server(factory.app(SCHEMA))
    assert listen_backlog(default.port) == min(4096, somaxconn)
    configured = factory.server(factory.app(SCHEMA, yaml="http:\n  backlog: 77\n"))
    assert listen_backlog(configured.port) == 77
    assert_served(configured)
