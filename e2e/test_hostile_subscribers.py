"""Subscribers that do not read (the Real time article of the DocC catalogue, "Slow consumers"): a WebSocket and an SSE client
on raw sockets with a tiny receive buffer that never read after the handshake, and two that read only
late, while big records are written over REST. The server's memory must not grow with the bytes
written (each subscriber's buffer is bounded by `realtime.bufferBytes`), the late readers must find
`overflow` and the end of their stream, the never-readers must be disconnected, and a normal
subscriber and REST client beside them must get everything, in order."""

from __future__ import annotations

import base64
import json
import os
import queue
import socket
import threading
import time

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect as ws_connect
except ImportError as e:  # a missing client is a failure of the set-up, never a skip
    raise ImportError("websockets is needed: pip install -r e2e/requirements.txt") from e

from microlith_e2e import kernel_send_buffer_max, rss_kib

SCHEMA = """
type Blob @table @export {
    id: ID @primaryKey
    n: Int
    data: String
}
"""

#: The per-subscriber byte bound the server runs with.
BUFFER_BYTES = 2 * 1024 * 1024
#: How long the server lets a connection finish once its subscription ended (SubscriptionEndpoint.closeGrace).
CLOSE_GRACE = 5.0
RECORD_BYTES = 256 * 1024
RECORDS = 200
#: Headroom over the RSS measured before the writes. What may legitimately grow: the record cache
#: (run at 8 MB: its bytes plus decoded records, ~2x), SQLite's page caches (a few MB), the buffers of
#: the five subscriptions (each at most BUFFER_BYTES of encoded events, which hold the decoded record
#: and its JSON besides: ~3x, plus one event in NIO's hands: ~5 x 7 MB) and allocator slack. The
#: bytes written are 50 MB; a server that kept them for the two never-readers would hold ~2 x 150 MB.
RSS_HEADROOM_MB = 100


def rss_mb(pid: int) -> float:
    return rss_kib(pid) / 1024


class RawSubscriber:
    """A subscriber on a raw socket with a 4 KiB receive buffer that reads nothing after the
    response head until drain() is called."""

    def __init__(self, port: int, request: bytes, expect: bytes):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, f"closed during the response head: {head!r}"
            head += chunk
        assert head.startswith(expect), head
        self.data = b""
        self.eof = False

    @classmethod
    def websocket(cls, port: int, path: str) -> "RawSubscriber":
        key = base64.b64encode(os.urandom(16)).decode()
        return cls(port, (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode(), b"HTTP/1.1 101")

    @classmethod
    def event_stream(cls, port: int, path: str) -> "RawSubscriber":
        return cls(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n".encode(),
                   b"HTTP/1.1 200")

    def drain(self, until: float, done=lambda data: False) -> None:
        """Reads until the server closes the connection, `done(data)` holds, or the monotonic time `until`."""
        while not self.eof and not done(self.data) and time.monotonic() < until:
            self.sock.settimeout(max(0.05, min(0.5, until - time.monotonic())))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                continue
            except OSError:  # reset: closed too
                self.eof = True
                break
            if not chunk:
                self.eof = True
            self.data += chunk

    def count(self, needle: bytes) -> int:
        return self.data.count(needle)

    def close(self):
        self.sock.close()


def websocket_close_code(data: bytes) -> int | None:
    """The code of the close frame among the server's (unmasked) WebSocket frames, if one came."""
    i = 0
    while i + 2 <= len(data):
        op, ln, j = data[i] & 0x0F, data[i + 1] & 0x7F, i + 2
        if ln == 126:
            ln, j = int.from_bytes(data[j:j + 2], "big"), j + 2
        elif ln == 127:
            ln, j = int.from_bytes(data[j:j + 8], "big"), j + 8
        if j + ln > len(data):
            return None
        if op == 8:
            return int.from_bytes(data[j:j + 2], "big")
        i = j + ln
    return None


class Reader(threading.Thread):
    """A normal WebSocket subscriber: reads every frame into a queue."""

    def __init__(self, port: int, path: str):
        super().__init__(daemon=True)
        self.ws = ws_connect(f"ws://127.0.0.1:{port}{path}", open_timeout=10, close_timeout=1, max_size=None).__enter__()
        self.events: "queue.Queue[dict | None]" = queue.Queue()
        self.start()

    def run(self):
        try:
            while True:
                self.events.put(json.loads(self.ws.recv()))
        except (ConnectionClosed, OSError, ValueError, RuntimeError):
            self.events.put(None)

    def next(self, timeout: float = 15) -> dict:
        ev = self.events.get(timeout=timeout)
        assert ev is not None, "the normal subscriber was disconnected"
        return ev

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def test_subscribers_that_do_not_read_are_bounded_and_dropped(factory):
    server = factory.server(factory.app(SCHEMA, yaml=f"realtime:\n  bufferBytes: {BUFFER_BYTES}\n"), durability="normal", cache_mb=8)
    port, pid = server.port, server.process.pid
    assert server.put("/Blob/small", json={"n": 0, "data": "small"}).status_code == 201
    never_ws = RawSubscriber.websocket(port, "/Blob/")
    never_sse = RawSubscriber.event_stream(port, "/Blob/")
    late_ws = RawSubscriber.websocket(port, "/Blob/")
    late_sse = RawSubscriber.event_stream(port, "/Blob/")
    normal = Reader(port, "/Blob/")
    subscribers = (never_ws, never_sse, late_ws, late_sse)
    try:
        assert normal.next()["type"] == "subscribed"
        time.sleep(0.3)  # let the raw subscribers' `subscribed` events out, then measure
        baseline = rss_mb(pid)
        peak = baseline
        ids = [f"b{i:03d}" for i in range(RECORDS)]
        blob = "x" * RECORD_BYTES

        def write(i: int):
            nonlocal peak
            started = time.monotonic()
            r = server.put(f"/Blob/{ids[i]}", json={"n": i, "data": blob})
            assert r.status_code == 201, r
            small = server.get("/Blob/small")  # a normal REST client, served throughout
            assert small.status_code == 200 and small.json()["data"] == "small", small
            assert time.monotonic() - started < 5, f"write {i} and a read took {time.monotonic() - started:.1f} s"
            peak = max(peak, rss_mb(pid))

        # Phase 1: more than every raw subscriber's buffer plus what the kernel can hold for it, so
        # all four overflow; then the late readers read at once, well within the close grace.
        first = min(RECORDS // 2, 2 * (BUFFER_BYTES + kernel_send_buffer_max()) // RECORD_BYTES + 8)
        for i in range(first):
            write(i)
        deadline = time.monotonic() + CLOSE_GRACE + 10
        late_ws.drain(deadline, lambda d: websocket_close_code(d) is not None)
        late_sse.drain(deadline, lambda d: d.endswith(b"\r\n0\r\n\r\n"))
        for name, late in (("WebSocket", late_ws), ("SSE", late_sse)):
            assert late.count(b'"type":"overflow"') == 1, f"late {name} reader: no overflow event in {late.data[-300:]!r}"
            assert late.count(b'"type":"put"') < first, f"late {name} reader got every event: nothing was dropped"
            tail = late.data[late.data.index(b'"type":"overflow"'):]
            assert b'"type":"put"' not in tail, f"late {name} reader: events after overflow"
        assert websocket_close_code(late_ws.data) == 1008, "the slow WebSocket was not closed with 1008"
        assert late_sse.data.endswith(b"\r\n0\r\n\r\n"), "the slow SSE stream did not end"

        # Phase 2: the never-readers stay stuck while the rest is written.
        for i in range(first, RECORDS):
            write(i)
        got = []
        while len(got) < RECORDS:
            ev = normal.next()
            assert ev["type"] != "overflow", f"the normal subscriber overflowed after {len(got)} events"
            if ev["type"] == "put":
                got.append(ev["id"])
        assert got == ids, "the normal subscriber missed or reordered events"
        final = rss_mb(pid)
        assert peak - baseline < RSS_HEADROOM_MB, (
            f"RSS grew {peak - baseline:.0f} MB (baseline {baseline:.0f} MB, peak {peak:.0f} MB, after {final:.0f} MB) "
            f"while {RECORDS * RECORD_BYTES >> 20} MB were written to subscribers that do not read")

        # The never-readers overflowed in phase 1: the server has cut them off by now (close grace),
        # and what the kernel still held for them ends in EOF.
        deadline = time.monotonic() + CLOSE_GRACE + 5
        for name, never in (("WebSocket", never_ws), ("SSE", never_sse)):
            never.drain(deadline)
            assert never.eof, f"the never-reading {name} subscriber is still connected ({len(never.data)} bytes read)"
            assert never.count(b'"type":"put"') < RECORDS // 2, f"the never-reading {name} subscriber got {never.count(b'put')} events"
        assert server.get("/health").status_code == 200
        assert server.running
    finally:
        for s in subscribers:
            s.close()
        normal.close()
