"""Subscriptions over HTTP (the Real time article of the DocC catalogue, "Subscribing over HTTP"): Server-Sent Events through a
streaming http.client response, WebSocket through the `websockets` sync client (and a raw socket
for the client that never reads). Record, table, id-prefix and query subscriptions; `publish` over
WebSocket reaching SSE and MQTT; resume with Last-Event-ID / ?lastEventId; `reload` for a position
older than the retained change log; 404 / 400 problems; `overflow` for a slow consumer."""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid

import pytest

from microlith_e2e import assert_problem, http_request, kernel_send_buffer_max

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect as ws_connect
except ImportError as e:  # a missing client is a failure of the set-up, never a skip
    raise ImportError("websockets is needed: pip install -r e2e/requirements.txt") from e

#: Every wait is bounded by this (seconds).
WAIT = 5.0
#: How long to watch for an event that must NOT arrive.
QUIET = 0.6

SCHEMA = """
type Product @table @export {
    id: ID @primaryKey
    name: String
    category: String @indexed
    price: Float
}

type Sensor @table @export {
    id: ID @primaryKey
    room: String
    temp: Float
}

type Hidden @table {
    id: ID @primaryKey
    secret: String
}
"""

CHANGE_TYPES = ("put", "patch", "delete")


def uniq(prefix: str = "r") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def server(module_factory):
    return module_factory.server(module_factory.app(SCHEMA))


# -- clients -----------------------------------------------------------------------------------


class Subscription:
    """Events of one subscription, read on a background thread into a queue."""

    transport = "?"

    def __init__(self):
        self.events: "queue.Queue[dict | None]" = queue.Queue()
        self.closed = threading.Event()
        self.log: list = []

    def next(self, timeout: float = WAIT, what: str = "an event") -> dict:
        try:
            ev = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.transport}: no {what} within {timeout}s (so far: {self.log[-10:]})")
        if ev is None:
            self.events.put(None)
            raise AssertionError(f"{self.transport}: connection closed while waiting for {what} (so far: {self.log[-10:]})")
        return ev

    def next_of(self, *types: str, timeout: float = WAIT) -> dict:
        """The next event, which must be of one of `types`."""
        ev = self.next(timeout, f"a {'/'.join(types)} event")
        assert ev.get("type") in types, f"{self.transport}: expected {types}, got {ev}"
        return ev

    def quiet(self, duration: float = QUIET) -> list:
        """Every event that arrives within `duration` (expected empty by most callers)."""
        out, deadline = [], time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                break
            if ev is None:
                self.events.put(None)
                break
            out.append(ev)
        return out

    def _deliver(self, ev):
        self.log.append(ev)
        self.events.put(ev)


class SSE(Subscription):
    transport = "SSE"

    def __init__(self, port: int, path: str, headers: dict | None = None):
        super().__init__()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        self.conn.putrequest("GET", path, skip_accept_encoding=True)
        for k, v in {"Accept": "text/event-stream", **(headers or {})}.items():
            self.conn.putheader(k, v)
        self.conn.endheaders()
        self.response = self.conn.getresponse()
        self.status = self.response.status
        if self.status != 200:
            self.body = self.response.read()
            self.conn.close()
            return
        ctype = self.response.headers.get("Content-Type", "")
        assert ctype.startswith("text/event-stream"), f"SSE Content-Type {ctype!r}"
        self.conn.sock.settimeout(60)  # the reader thread blocks; waits are bounded by the queue
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        fields: dict = {}
        data: list = []
        try:
            while True:
                raw = self.response.readline()
                if not raw:
                    break
                line = raw.decode("utf-8").rstrip("\r\n")
                if line == "":
                    if data:
                        payload = json.loads("\n".join(data))
                        payload["_event"] = fields.get("event", "message")
                        payload["_id"] = fields.get("id")
                        self._deliver(payload)
                    fields, data = {}, []
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                else:
                    fields[name] = value
        except (OSError, ValueError, http.client.HTTPException):
            pass
        finally:
            self.closed.set()
            self.events.put(None)

    def close(self):
        try:
            if self.conn.sock is not None:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        # The reader ends on the shutdown; closing the connection under it would pull its buffer away mid-read.
        reader = getattr(self, "reader", None)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)
        self.conn.close()


class WS(Subscription):
    transport = "WebSocket"

    def __init__(self, port: int, path: str):
        super().__init__()
        # (entered by hand: websockets >= 17.1 wants connect() used as a context manager)
        self.ws = ws_connect(f"ws://127.0.0.1:{port}{path}", open_timeout=WAIT, close_timeout=1, max_size=None).__enter__()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                frame = self.ws.recv()
                if isinstance(frame, bytes):  # the doc says text frames; make a test fail on it
                    self._deliver({"type": "<binary frame>", "raw": frame[:200]})
                    continue
                self._deliver(json.loads(frame))
        except (ConnectionClosed, OSError, ValueError, RuntimeError):
            pass
        finally:
            self.closed.set()
            self.events.put(None)

    def send(self, value):
        self.ws.send(json.dumps(value))

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


@pytest.fixture
def open_sub():
    """open_sub(transport, server, path, **kw) -> a subscription, closed at the end of the test."""
    made: list[Subscription] = []

    def make(transport: str, server, path: str, *, last_event_id=None) -> Subscription:
        if transport == "sse":
            headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else None
            s = SSE(server.port, path, headers)
            assert s.status == 200, f"SSE {path}: {s.status} {s.body[:300]!r}"
        else:
            if last_event_id is not None:
                path += ("&" if "?" in path else "?") + f"lastEventId={last_event_id}"
            s = WS(server.port, path)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


transports = pytest.mark.parametrize("transport", ["ws", "sse"])


def check_change(ev: dict, kind: str, table: str, rid: str, *, after: int | None = None, transport: str = ""):
    assert ev.get("type") == kind, f"expected {kind}, got {ev}"
    assert ev["table"] == table and ev["id"] == rid, ev
    assert isinstance(ev["seq"], int) and isinstance(ev["version"], int), ev
    if after is not None:
        assert ev["seq"] > after, f"seq {ev['seq']} not after {after}: {ev}"
    if kind == "delete":
        assert ev["value"] is None, ev
    else:
        assert isinstance(ev["value"], dict) and ev["value"]["id"] == rid, ev
    if transport == "sse":
        assert ev["_event"] == kind and ev["_id"] == str(ev["seq"]), f"SSE event/id lines wrong: {ev}"
    return ev


def subscribed(sub: Subscription, transport: str) -> int:
    ev = sub.next_of("subscribed")
    assert isinstance(ev.get("position"), int), ev
    if transport == "sse":
        assert ev["_event"] == "subscribed", ev
    return ev["position"]


# == record, table, prefix, query ==============================================================


@transports
def test_record_subscription_gets_subscribed_current_then_changes(server, open_sub, transport):
    rid = uniq("rec")
    assert server.put(f"/Product/{rid}", json={"name": "boot", "category": "shoes", "price": 50.0}).status_code == 201
    sub = open_sub(transport, server, f"/Product/{rid}")
    position = subscribed(sub, transport)
    cur = sub.next_of("current")
    assert cur["table"] == "Product" and cur["id"] == rid, cur
    assert cur["value"]["name"] == "boot" and cur["value"]["price"] == 50.0, cur
    if transport == "sse":
        assert cur["_event"] == "current"

    server.put(f"/Product/{uniq('other')}", json={"name": "not mine"})
    server.put(f"/Product/{rid}", json={"name": "boot", "category": "shoes", "price": 45.0})
    put = check_change(sub.next(), "put", "Product", rid, after=position, transport=transport)
    assert put["value"]["price"] == 45.0
    server.patch(f"/Product/{rid}", json={"price": 40.0})
    patch = check_change(sub.next(), "patch", "Product", rid, after=put["seq"], transport=transport)
    assert patch["value"]["price"] == 40.0 and patch["value"]["name"] == "boot", "patch value is the whole record"
    assert patch["version"] != put["version"]
    assert server.delete(f"/Product/{rid}").status_code in (200, 204)
    check_change(sub.next(), "delete", "Product", rid, after=patch["seq"], transport=transport)
    assert sub.quiet() == []


@transports
def test_record_subscription_of_a_missing_record_has_current_null(server, open_sub, transport):
    rid = uniq("missing")
    sub = open_sub(transport, server, f"/Product/{rid}")
    subscribed(sub, transport)
    cur = sub.next_of("current")
    assert cur["id"] == rid and cur["value"] is None, cur
    server.put(f"/Product/{rid}", json={"name": "born"})
    check_change(sub.next(), "put", "Product", rid, transport=transport)


@transports
def test_table_subscription_gets_every_record_in_commit_order(server, open_sub, transport):
    sub = open_sub(transport, server, "/Product/")
    position = subscribed(sub, transport)
    ids = [uniq("tbl") for _ in range(5)]
    for i, rid in enumerate(ids):
        assert server.put(f"/Product/{rid}", json={"name": f"n{i}", "price": float(i)}).status_code == 201
    server.put(f"/Sensor/{uniq('s')}", json={"room": "other table"})
    server.delete(f"/Product/{ids[0]}")
    got = [sub.next() for _ in range(6)]
    assert [e["type"] for e in got] == ["put"] * 5 + ["delete"], got
    assert [e["id"] for e in got] == ids + [ids[0]]
    seqs = [e["seq"] for e in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6 and seqs[0] > position, seqs
    for e in got:
        check_change(e, e["type"], "Product", e["id"], transport=transport)
    assert not any(e.get("type") == "current" for e in got)
    assert [e for e in sub.quiet() if e.get("table") != "Product"] == []


@transports
def test_id_prefix_subscription(server, open_sub, transport):
    room = uniq("room")
    sub = open_sub(transport, server, f"/Sensor/{room}/")
    subscribed(sub, transport)
    # ids with '/' form a hierarchy: PUT /Sensor/<room>%2Fa creates the id "<room>/a".
    assert server.put(f"/Sensor/{room}x%2Fa", json={"room": "not a child"}).status_code == 201
    assert server.put(f"/Sensor/{room}", json={"room": "the parent itself"}).status_code == 201
    assert server.put(f"/Sensor/{room}%2Fa", json={"room": "child a"}).status_code == 201
    assert server.put(f"/Sensor/{room}%2Fb%2Fdeep", json={"room": "grandchild"}).status_code == 201
    got = [sub.next(), sub.next()]
    assert [(e["type"], e["id"]) for e in got] == [("put", f"{room}/a"), ("put", f"{room}/b/deep")], got
    assert sub.quiet() == []


@transports
def test_query_subscription_and_records_leaving_the_query(server, open_sub, transport):
    cat = uniq("cat")
    sub = open_sub(transport, server, f"/Product/?category={cat}")
    subscribed(sub, transport)
    a, b = uniq("qa"), uniq("qb")
    server.put(f"/Product/{b}", json={"name": "hat", "category": "hats"})
    server.put(f"/Product/{a}", json={"name": "shoe", "category": cat, "price": 10.0})
    check_change(sub.next(), "put", "Product", a, transport=transport)
    server.patch(f"/Product/{a}", json={"price": 12.0})
    ev = check_change(sub.next(), "patch", "Product", a, transport=transport)
    assert ev["value"]["price"] == 12.0
    # a stops matching: a delete event (value null), although the record still exists
    server.patch(f"/Product/{a}", json={"category": "hats"})
    ev = sub.next()
    assert ev["type"] == "delete" and ev["id"] == a and ev["value"] is None, ev
    assert server.get(f"/Product/{a}").status_code == 200
    # changes to records outside the query are not sent
    server.patch(f"/Product/{a}", json={"price": 1.0})
    server.patch(f"/Product/{b}", json={"price": 2.0})
    assert sub.quiet() == []
    # b starts matching
    server.patch(f"/Product/{b}", json={"category": cat})
    ev = sub.next()
    assert ev["type"] in ("put", "patch") and ev["id"] == b and ev["value"]["category"] == cat, ev


# == publish over WebSocket =====================================================================


def test_websocket_publish_reaches_sse_mqtt_and_is_not_stored(server, open_sub):
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    rid = uniq("pub")
    sse = open_sub("sse", server, f"/Product/{rid}")
    subscribed(sse, "sse")
    sse.next_of("current")
    other = open_sub("ws", server, f"/Product/{uniq('elsewhere')}")
    subscribed(other, "ws")
    other.next_of("current")

    assert server.mqtt_port, "the server has no MQTT port (is the MQTT broker built in?)\n" + server.logs()
    got: "queue.Queue" = queue.Queue()
    suback = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uniq("wsbridge"), protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: got.put((m.topic, bytes(m.payload), m.retain))
    client.on_subscribe = lambda c, u, mid, rcs, p: suback.set()
    client.connect("127.0.0.1", server.mqtt_port, keepalive=30)
    client.loop_start()
    try:
        client.subscribe(f"Product/{rid}", 1)
        assert suback.wait(WAIT), "no SUBACK"
        ws = open_sub("ws", server, f"/Product/{rid}")
        subscribed(ws, "ws")
        ws.next_of("current")
        ws.send({"type": "publish", "value": {"hello": "world", "n": 1}})

        ev = sse.next_of("message")
        assert ev["table"] == "Product" and ev["id"] == rid and ev["value"] == {"hello": "world", "n": 1}, ev
        assert ev["_event"] == "message"
        deadline = time.monotonic() + WAIT
        while True:
            topic, payload, retain = got.get(timeout=max(0.01, deadline - time.monotonic()))
            if payload:  # (a missing record has nothing retained, but be lenient about an empty one)
                break
        assert topic == f"Product/{rid}" and json.loads(payload) == {"hello": "world", "n": 1} and not retain
        assert other.quiet(0.3) == [], "a subscriber of another record got the message"
        assert server.get(f"/Product/{rid}").status_code == 404, "a published message must not be stored"
    finally:
        client.disconnect()
        client.loop_stop()


# == resume =====================================================================================


def make_history(server, n: int) -> list[dict]:
    """n puts on fresh Product records, with their seqs (read through a table subscription)."""
    ws = WS(server.port, "/Product/")
    try:
        subscribed(ws, "ws")
        ids = [uniq("h") for _ in range(n)]
        for rid in ids:
            assert server.put(f"/Product/{rid}", json={"name": rid}).status_code == 201
        events = []
        while len(events) < n:
            ev = ws.next()
            if ev.get("id") in ids:
                events.append(ev)
        return events
    finally:
        ws.close()


@pytest.mark.parametrize("transport,how", [("sse", "header"), ("sse", "query"), ("ws", "query")])
def test_resume_gets_exactly_the_missed_changes_then_live_ones(server, open_sub, transport, how):
    history = make_history(server, 4)
    last = history[0]["seq"]
    if transport == "sse" and how == "query":
        sub = open_sub("sse", server, f"/Product/?lastEventId={last}")
    else:
        sub = open_sub(transport, server, "/Product/", last_event_id=last)
    # Every change after `last` (history[1:] and possibly other tests' writes, all in order), then subscribed.
    replayed = []
    while True:
        ev = sub.next()
        if ev["type"] == "subscribed":
            position = ev["position"]
            break
        assert ev["type"] in CHANGE_TYPES, f"before subscribed on resume: {ev}"
        replayed.append(ev)
    seqs = [e["seq"] for e in replayed]
    assert seqs == sorted(set(seqs)), f"replay out of order or repeated: {seqs}"
    assert all(s > last for s in seqs), seqs
    mine = [e["id"] for e in replayed if e["id"] in {h["id"] for h in history}]
    assert mine == [h["id"] for h in history[1:]], f"expected exactly the missed changes, got {mine}"
    assert [e["seq"] for e in replayed if e["id"] in mine] == [h["seq"] for h in history[1:]]
    assert position >= history[-1]["seq"]
    # Then live changes, no duplicates, no `current`.
    live = uniq("live")
    server.put(f"/Product/{live}", json={"name": "live"})
    ev = sub.next()
    while ev.get("id") != live:
        assert ev["type"] in CHANGE_TYPES and ev["seq"] > position, f"duplicate or stale event after subscribed: {ev}"
        ev = sub.next()
    check_change(ev, "put", "Product", live, after=position, transport=transport)
    assert all(e.get("id") not in {h["id"] for h in history} for e in sub.quiet(0.3))


@transports
def test_resume_of_a_record_subscription_has_no_current(server, open_sub, transport):
    rid = uniq("rr")
    first = server.put(f"/Product/{rid}", json={"name": "v1"})
    assert first.status_code == 201
    live = open_sub("ws", server, f"/Product/{rid}")
    subscribed(live, "ws")
    live.next_of("current")
    server.put(f"/Product/{rid}", json={"name": "v2"})
    seq2 = live.next_of("put")["seq"]
    server.put(f"/Product/{rid}", json={"name": "v3"})
    server.put(f"/Product/{rid}", json={"name": "v4"})
    sub = open_sub(transport, server, f"/Product/{rid}", last_event_id=seq2)
    e3, e4 = sub.next_of("put"), sub.next_of("put")
    assert (e3["value"]["name"], e4["value"]["name"]) == ("v3", "v4")
    subscribed(sub, transport)
    server.put(f"/Product/{rid}", json={"name": "v5"})
    assert sub.next_of("put")["value"]["name"] == "v5", "no current on resume; the next event is the live put"


@transports
def test_position_older_than_the_retained_log_gets_reload(factory, open_sub, transport):
    """The change log is trimmed by deleting its oldest entries while the server is stopped (what the
    retention sweep does after store.changeLogRetentionHours, which cannot be shorter than an hour)."""
    server = factory.server(factory.app(SCHEMA))
    for i in range(6):
        assert server.put(f"/Product/old-{i}", json={"name": f"old {i}"}).status_code == 201
    assert server.stop() == 0
    db = os.path.join(server.data_dir, "data.sqlite")
    assert os.path.exists(db), f"no data.sqlite in {os.listdir(server.data_dir)}"
    with sqlite3.connect(db) as conn:
        (oldest, latest) = conn.execute("SELECT MIN(seq), MAX(seq) FROM _microlith_changelog").fetchone()
        assert latest - oldest >= 5, (oldest, latest)
        conn.execute("DELETE FROM _microlith_changelog WHERE seq < ?", (oldest + 4,))
    conn.close()
    server.start()

    sub = open_sub(transport, server, "/Product/", last_event_id=oldest)
    ev = sub.next()
    while ev["type"] == "subscribed":
        ev = sub.next()
    assert ev["type"] == "reload", f"expected reload for a trimmed position, got {ev}"
    assert isinstance(ev.get("position"), int) and isinstance(ev.get("oldest"), int) and ev.get("reason"), ev
    assert ev["oldest"] > oldest + 1, ev
    if transport == "sse":
        assert ev["_event"] == "reload"
    # Live events follow.
    server.put("/Product/after-reload", json={"name": "new"})
    ev = sub.next()
    while ev["type"] != "put" or ev["id"] != "after-reload":
        assert ev["type"] in ("subscribed",) + CHANGE_TYPES, ev
        ev = sub.next()

    # A position still in the log replays normally (no reload).
    ok = open_sub(transport, server, "/Product/", last_event_id=oldest + 4)
    first = ok.next()
    assert first["type"] != "reload", first


# == errors =====================================================================================


def assert_ws_rejected(server, path: str, status: int):
    """A WebSocket whose URL names no valid subscription gets one `error` event (the problem the same
    HTTP request would get) and is closed with code 4000 + status. Browsers' WebSocket API cannot read
    a failed handshake's status or body, so the error travels inside the socket (the Real time article of the DocC catalogue)."""
    with ws_connect(f"ws://127.0.0.1:{server.port}{path}", open_timeout=WAIT) as ws:
        event = json.loads(ws.recv(timeout=WAIT))
        assert event["type"] == "error", event
        assert event["status"] == status, event
        assert event["detail"], event
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=WAIT)
        assert ws.close_code == 4000 + status, ws.close_code


@pytest.mark.parametrize("path", ["/Nope/1", "/Nope/", "/Hidden/h1", "/Hidden/"])
def test_unknown_or_unexported_table_is_404_on_both(server, path):
    assert_problem(http_request(server.port, "GET", path, headers={"Accept": "text/event-stream"}), 404)
    assert_ws_rejected(server, path, 404)


@pytest.mark.parametrize("query", ["price=xx=5", "[category=shoes", "nope(1)", "price=gt=cheap"])
def test_bad_query_is_400_on_both(server, query):
    path = f"/Product/?{query}"
    assert_problem(http_request(server.port, "GET", path, headers={"Accept": "text/event-stream"}), 400)
    assert_ws_rejected(server, path, 400)


def test_plain_get_still_returns_json(server):
    rid = uniq("plain")
    server.put(f"/Product/{rid}", json={"name": "x"})
    r = server.get(f"/Product/{rid}")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")


# == slow consumers =============================================================================


class NonReadingWebSocket:
    """A raw-socket WebSocket client with a tiny receive buffer that reads nothing after the handshake."""

    def __init__(self, port: int, path: str):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(WAIT)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, f"closed during the handshake: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head

    def drain(self, timeout: float = WAIT) -> tuple[list, bool]:
        """Reads everything now: (text frames decoded as JSON, whether the server closed)."""
        buf, deadline, closed = b"", time.monotonic() + timeout, False
        self.sock.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            buf += chunk
        frames, i = [], 0
        while i + 2 <= len(buf):
            op, ln = buf[i] & 0x0F, buf[i + 1] & 0x7F
            j = i + 2
            if ln == 126:
                ln, j = int.from_bytes(buf[j:j + 2], "big"), j + 2
            elif ln == 127:
                ln, j = int.from_bytes(buf[j:j + 8], "big"), j + 8
            if j + ln > len(buf):
                break
            if op == 1:
                frames.append(json.loads(buf[j:j + ln]))
            elif op == 8:
                closed = True
            i = j + ln
        return frames, closed

    def close(self):
        self.sock.close()


def test_slow_consumer_gets_overflow_and_others_keep_everything(factory, open_sub):
    server = factory.server(factory.app(SCHEMA, yaml="realtime:\n  bufferEvents: 10\n"))
    slow = NonReadingWebSocket(server.port, "/Product/")
    fast = open_sub("ws", server, "/Product/")
    subscribed(fast, "ws")
    try:
        # Big events, more bytes in all than the kernel's largest send buffer can hold, so what the
        # slow client does not read has to pile up in the server's own per-connection buffer.
        big = "x" * 32_000
        n = max(150, int(1.5 * kernel_send_buffer_max() / len(big)) + 20)
        for i in range(n):
            assert server.put(f"/Product/slow-{i:03d}", json={"name": big, "price": float(i)}).status_code == 201
        got = []
        while len(got) < n:
            ev = fast.next(what=f"put {len(got)} of {n} on the fast client")
            if ev["type"] == "put":
                got.append(ev["id"])
            else:
                assert ev["type"] != "overflow", f"the fast client overflowed: {ev}"
        assert got == [f"slow-{i:03d}" for i in range(n)], "the fast client missed or reordered events"

        frames, closed = slow.drain()
        types = [f.get("type") for f in frames]
        assert closed, f"the slow client was not disconnected (read {len(frames)} events: {types[-5:]})"
        puts = [f for f in frames if f.get("type") == "put"]
        assert len(puts) < n, "the slow client got everything: no back-pressure reached the buffer"
        # The overflow event is queued behind what the client never read; when it gets through it
        # comes last and names a reason.
        if "overflow" in types:
            ov = frames[types.index("overflow")]
            assert ov.get("reason"), ov
            assert all(t != "put" for t in types[types.index("overflow"):]), f"events after overflow: {types[-5:]}"
        assert server.running
    finally:
        slow.close()


# == shutdown ===================================================================================


@pytest.mark.parametrize("close_first", [False, True], ids=["open", "closed-by-client"])
@transports
def test_server_stops_promptly_with_subscribers(factory, transport, close_first):
    """SIGTERM ends live subscriptions (the server closes them) and the process exits 0 within a few
    seconds; subscriptions the clients already closed do not hold it up either."""
    server = factory.server(factory.app(SCHEMA))
    subs = []
    for path in ("/Product/", "/Product/x1", "/Product/?category=a"):
        s = SSE(server.port, path) if transport == "sse" else WS(server.port, path)
        if transport == "sse":
            assert s.status == 200, s.body
        subscribed(s, transport)
        subs.append(s)
    server.put("/Product/x1", json={"name": "x"})
    try:
        if close_first:
            for s in subs:
                s.close()
            time.sleep(0.2)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        try:
            code = server.process.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the server did not exit within 5 s of SIGTERM with {transport} subscribers\n" + server.logs())
        assert code == 0, server.logs()
        assert time.monotonic() - started < 5
        if not close_first:
            for s in subs:
                assert s.closed.wait(2), f"{transport} subscription still open after the server exited"
    finally:
        for s in subs:
            s.close()
        server.kill()  # (after a failure: no 15 s wait for the harness's own stop)
