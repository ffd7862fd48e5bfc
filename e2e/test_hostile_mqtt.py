"""Hostile MQTT clients against a real `microlith serve` (the Real time article of the DocC catalogue, "Limits"): what they can
make the broker hold or send is bounded, and well-behaved clients are served meanwhile.

Raw sockets where the point is bytes and timing (a silent or trickling connection, a 1,000-filter
SUBSCRIBE, a subscriber that never reads); paho-mqtt for the SUBACK reason codes of both protocol
versions. Each test starts its own server with small limits so that it runs in seconds.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import threading
import time
import uuid

import pytest

from microlith_e2e import MicrolithServer, rss_kib

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
except ImportError as e:  # a missing client is a failure of the set-up, never a skip
    raise ImportError("paho-mqtt is needed: pip install -r e2e/requirements.txt") from e

SCHEMA = """
type Todo @table @export {
    id: ID @primaryKey
    title: String
}

type Big @table @export {
    id: ID @primaryKey
    body: String
}
"""

#: The CONNECT timeout the timeout tests configure (seconds).
CONNECT_TIMEOUT = 2


# -- a minimal MQTT 3.1.1 client on a raw socket ------------------------------------------------


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_string(s: str) -> bytes:
    data = s.encode()
    return struct.pack("!H", len(data)) + data


def connect_packet(client_id: str, keep_alive: int = 0) -> bytes:
    body = mqtt_string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keep_alive) + mqtt_string(client_id)
    return bytes([0x10]) + remaining_length(len(body)) + body


def subscribe_packet(packet_id: int, filters: list[tuple[str, int]]) -> bytes:
    body = struct.pack("!H", packet_id) + b"".join(mqtt_string(f) + bytes([qos]) for f, qos in filters)
    return bytes([0x82]) + remaining_length(len(body)) + body


class RawClient:
    """MQTT 3.1.1 over a plain socket: packets parsed from the byte stream, every byte counted."""

    def __init__(self, port: int, *, receive_buffer: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = b""
        self.received = 0

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Reads more bytes; False at end of stream (or reset)."""
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        self.received += len(chunk)
        self.buffer += chunk
        return bool(chunk)

    def packet(self, timeout: float = 5.0):
        """The next packet as (type byte, body); None if the server closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            parsed = self._parse()
            if parsed is not None:
                return parsed
            if not self._fill(deadline):
                return None

    def _parse(self):
        if len(self.buffer) < 2:
            return None
        length, multiplier, i = 0, 1, 1
        while True:
            if i >= len(self.buffer):
                return None
            byte = self.buffer[i]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            i += 1
            if not byte & 0x80:
                break
        if len(self.buffer) < i + length:
            return None
        first, body = self.buffer[0], self.buffer[i:i + length]
        self.buffer = self.buffer[i + length:]
        return first, body

    def handshake(self, client_id: str):
        self.send(connect_packet(client_id))
        first, body = self.packet()
        assert first == 0x20 and body[1] == 0, f"CONNACK refused: {body!r}"

    def publishes_until_quiet(self, quiet: float = 1.0, limit: float = 20.0) -> list[tuple[str, bytes]]:
        """Every PUBLISH (topic, payload) until nothing arrives for `quiet` seconds."""
        out = []
        end = time.monotonic() + limit
        while time.monotonic() < end:
            try:
                parsed = self.packet(timeout=quiet)
            except socket.timeout:
                return out
            if parsed is None:
                return out
            first, body = parsed
            assert first >> 4 == 3, f"expected PUBLISH, got type {first >> 4}"
            (n,) = struct.unpack("!H", body[:2])
            topic = body[2:2 + n].decode()
            rest = body[2 + n:]
            if first & 0x06:  # QoS 1: acknowledge
                packet_id = rest[:2]
                rest = rest[2:]
                self.send(bytes([0x40, 2]) + packet_id)
            out.append((topic, rest))
        raise AssertionError(f"publishes kept coming for {limit}s")

    def closed_within(self, seconds: float) -> float | None:
        """Seconds until the server closed the connection (reading and dropping what it sent), or None."""
        start = time.monotonic()
        deadline = start + seconds
        while time.monotonic() < deadline:
            try:
                if not self._fill(deadline):
                    return time.monotonic() - start
            except socket.timeout:
                return None
            self.buffer = b""
        return None

    def close(self):
        self.sock.close()


def start(factory, yaml: str, *, data: dict | None = None, **kwargs) -> MicrolithServer:
    server = factory.server(factory.app(SCHEMA, yaml=yaml, data=data), **kwargs)
    assert server.mqtt_port, "the server has no MQTT port\n" + server.logs()
    return server


class Paho:
    """A paho client that waits for CONNACK and SUBACK."""

    def __init__(self, port: int, protocol):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex[:8]}", protocol=protocol)
        self.connected = threading.Event()
        self.subacks: dict = {}
        self.messages: list = []
        self.lock = threading.Lock()
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set()
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(5), "no CONNACK"

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.lock:
            self.subacks[mid] = [rc.value if hasattr(rc, "value") else int(rc) for rc in reason_codes]

    def subscribe(self, filters: list[str]) -> list[int]:
        _, mid = self.client.subscribe([(f, 0) for f in filters])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self.lock:
                if mid in self.subacks:
                    return self.subacks[mid]
            time.sleep(0.01)
        raise AssertionError("no SUBACK")

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


# -- timeouts ------------------------------------------------------------------------------------


def test_silent_tcp_connection_is_closed_after_the_connect_timeout(factory):
    """A TCP connection that never sends CONNECT is closed mqtt.connectTimeoutSeconds after it
    opened (MQTT 3.1.1 and 5, section 3.1.4: a server should close a connection without CONNECT)."""
    server = start(factory, f"mqtt:\n  connectTimeoutSeconds: {CONNECT_TIMEOUT}\n")
    silent = RawClient(server.mqtt_port)
    waited = silent.closed_within(CONNECT_TIMEOUT + 5)
    assert waited is not None, "the silent connection was still open"
    assert CONNECT_TIMEOUT - 0.5 <= waited <= CONNECT_TIMEOUT + 2, waited
    assert silent.received == 0


def test_trickled_connect_is_closed_at_the_connect_timeout(factory):
    """A CONNECT sent a byte at a time, slower than the timeout allows, is cut off at the timeout
    although bytes keep arriving."""
    server = start(factory, f"mqtt:\n  connectTimeoutSeconds: {CONNECT_TIMEOUT}\n")
    client = RawClient(server.mqtt_port)
    packet = connect_packet("trickler-" + "x" * 30)
    started = time.monotonic()
    sent = 0
    closed_at = None
    for byte in packet:
        try:
            client.send(bytes([byte]))
            sent += 1
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - started
            break
        time.sleep(0.25)
        client.sock.setblocking(False)
        try:
            if client.sock.recv(1) == b"":
                closed_at = time.monotonic() - started
                break
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed_at = time.monotonic() - started
            break
        finally:
            client.sock.setblocking(True)
    assert closed_at is not None, "the whole CONNECT went through a byte at a time"
    assert sent < len(packet)
    assert CONNECT_TIMEOUT - 0.5 <= closed_at <= CONNECT_TIMEOUT + 2, closed_at


def test_silent_websocket_mqtt_connection_is_closed_after_the_connect_timeout(factory):
    """MQTT over WebSocket shares the broker's connection code: an upgraded socket that sends no
    CONNECT is closed at the same timeout."""
    server = start(factory, f"mqtt:\n  connectTimeoutSeconds: {CONNECT_TIMEOUT}\n")
    sock = socket.create_connection(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((
        f"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
    ).encode())
    sock.settimeout(5)
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = sock.recv(4096)
        assert chunk, "closed during the handshake"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    started = time.monotonic()
    sock.settimeout(CONNECT_TIMEOUT + 5)
    rest = response.split(b"\r\n\r\n", 1)[1]
    while True:
        # A close frame (opcode 8) or the end of the stream ends the connection.
        if rest and rest[0] & 0x0F == 0x8:
            break
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    waited = time.monotonic() - started
    sock.close()
    assert CONNECT_TIMEOUT - 0.5 <= waited <= CONNECT_TIMEOUT + 2, waited


def websocket_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """A masked client frame (binary by default), as RFC 6455 asks of clients."""
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class WebSocketRawClient(RawClient):
    """MQTT 3.1.1 over WebSocket (subprotocol mqtt) on a plain socket; every MQTT packet it sends is
    one binary frame. It reads only what `handshake` needs, then counts and drops bytes."""

    def __init__(self, port: int, *, receive_buffer: int | None = None):
        super().__init__(port, receive_buffer=receive_buffer)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
        ).encode())
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(deadline), "closed during the WebSocket handshake"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send(self, data: bytes):
        self.sock.sendall(websocket_frame(data))

    def handshake(self, client_id: str):
        self.send(connect_packet(client_id))
        deadline = time.monotonic() + 5
        # The CONNACK in one binary frame: 0x82, length 4, then 0x20 0x02 flags 0x00.
        while len(self.buffer) < 6:
            assert self._fill(deadline), "closed before the CONNACK"
        assert self.buffer[:5] == b"\x82\x04\x20\x02\x00" and self.buffer[5] == 0, f"CONNACK refused: {self.buffer[:8]!r}"
        self.buffer = self.buffer[6:]


def start_big_table(factory) -> MicrolithServer:
    """A server with a 64 KiB output bound per client, dropping one without room after 2 s, a small
    record cache, and a table Big of 20,000 records of 2 KB (about 40 MB)."""
    return start(
        factory,
        "mqtt:\n  bufferBytes: 65536\n  writeTimeoutSeconds: 2\n",
        data={"Big": [{"id": f"r{i:05d}", "body": "b" * 2000} for i in range(20_000)]},
        cache_mb=8,
    )


def test_websocket_subscriber_that_never_reads_a_big_table_is_dropped_and_memory_stays_bounded(factory):
    """The same subscriber as the test below, over WebSocket: the broker writes its frames on the
    socket's event loop, counts what the socket has not sent (mqtt.bufferBytes), so it sends the
    records a page at a time as the socket drains and drops the client after
    mqtt.writeTimeoutSeconds without room; the server's resident memory grows by less than 32 MB
    (the table is about 40 MB)."""
    server = start_big_table(factory)
    pid = server.process.pid
    baseline = rss_kib(pid)
    hostile = WebSocketRawClient(server.port, receive_buffer=4096)
    hostile.handshake("hostile-ws")
    hostile.send(subscribe_packet(1, [("Big/#", 0)]))
    peak = baseline
    end = time.monotonic() + 5
    while time.monotonic() < end:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.2)
    assert hostile.closed_within(10) is not None, "the WebSocket client that never reads is still connected"
    assert hostile.received < 8 << 20, hostile.received
    growth_mb = (peak - baseline) / 1024
    print(f"VmRSS baseline {baseline / 1024:.1f} MB, peak {peak / 1024:.1f} MB; the hostile client got {hostile.received} bytes")
    assert growth_mb < 32, f"VmRSS grew by {growth_mb:.1f} MB (baseline {baseline / 1024:.1f} MB)"
    # A well-behaved client over WebSocket is still served.
    normal = WebSocketRawClient(server.port)
    normal.handshake("normal-ws")
    normal.close()
    assert server.running


# -- subscriptions -------------------------------------------------------------------------------


def test_thousand_duplicate_filters_deliver_each_record_once(factory):
    """One SUBSCRIBE of 1,000 × Todo/# (all granted: mqtt.maxTopicFiltersPerPacket raised to 1,000)
    sends each of the N records once: the bytes received are those of N retained PUBLISHes, not
    1,000 × N."""
    n = 200
    todos = [{"id": f"t{i:04d}", "title": "x" * 100} for i in range(n)]
    server = start(factory, "mqtt:\n  maxTopicFiltersPerPacket: 1000\n", data={"Todo": todos})
    client = RawClient(server.mqtt_port)
    client.handshake("dup")
    request = subscribe_packet(1, [("Todo/#", 0)] * 1000)
    client.send(request)
    first, body = client.packet()
    assert first == 0x90 and body[2:] == bytes(1000), "every filter granted QoS 0"
    before = client.received
    got = client.publishes_until_quiet()
    assert sorted(t for t, _ in got) == sorted(f"Todo/{t['id']}" for t in todos)
    one = max(len(json.dumps(t)) for t in todos) + 32
    print(f"{len(got)} PUBLISHes, {client.received - before} bytes after the SUBACK")
    assert client.received - before <= n * one, (client.received - before, n * one)
    client.close()


@pytest.mark.parametrize("version", ["v311", "v5"])
def test_subscriptions_past_the_per_client_cap_are_refused(factory, version):
    """Past mqtt.maxSubscriptionsPerClient a SUBACK refuses each further filter: 0x97 Quota exceeded
    in MQTT 5, 0x80 Failure in 3.1.1; past mqtt.maxTopicFiltersPerPacket the same."""
    server = start(factory, "mqtt:\n  maxSubscriptionsPerClient: 5\n  maxTopicFiltersPerPacket: 4\n")
    protocol = mqtt.MQTTv5 if version == "v5" else mqtt.MQTTv311
    refused = 0x97 if version == "v5" else 0x80
    client = Paho(server.mqtt_port, protocol)
    try:
        assert client.subscribe(["a", "b", "c", "d", "e", "f"]) == [0, 0, 0, 0, refused, refused]
        assert client.subscribe(["e", "a", "f"]) == [0, 0, refused]
    finally:
        client.stop()


# -- a subscriber that never reads ---------------------------------------------------------------


def test_subscriber_that_never_reads_a_big_table_is_dropped_and_memory_stays_bounded(factory):
    """A client subscribes to Big/# (about 40 MB of records) and never reads. The broker sends the
    records a page at a time as the socket drains, so it never holds more than about
    mqtt.bufferBytes of them, and drops the client after mqtt.writeTimeoutSeconds without room.

    The bound on the server's resident memory: it grows by less than 32 MB while this goes on.
    Holding the records the subscription matches (what the broker did before, several times over:
    rows, then encoded PUBLISHes) would take more than the 40 MB of the table; what it may hold now
    is mqtt.bufferBytes (64 KiB) of output and one page (16 KiB) of records, plus SQLite's page
    cache (8 MiB here, --cache-mb 8): 32 MB leaves room for allocator noise of a debug build.
    Meanwhile a normal client publishes and receives on a plain topic and reads a record."""
    server = start_big_table(factory)
    pid = server.process.pid
    normal = Paho(server.mqtt_port, mqtt.MQTTv311)
    try:
        assert normal.subscribe(["Big/r00042", "chat/#"]) == [0, 0]
        deadline = time.monotonic() + 5
        while not normal.messages and time.monotonic() < deadline:
            time.sleep(0.01)
        assert normal.messages and normal.messages[0][0] == "Big/r00042"
        baseline = rss_kib(pid)

        hostile = RawClient(server.mqtt_port, receive_buffer=4096)
        hostile.handshake("hostile")
        hostile.send(subscribe_packet(1, [("Big/#", 0)]))
        peak = baseline
        served = 0
        end = time.monotonic() + 6
        while time.monotonic() < end:
            peak = max(peak, rss_kib(pid))
            normal.client.publish("chat/room", f"hello {served}".encode())
            served += 1
            time.sleep(0.2)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(t == "chat/room" for t, _ in normal.messages):
            time.sleep(0.01)
        assert sum(1 for t, _ in normal.messages if t == "chat/room") >= served // 2, "the normal client was not served"

        # Dropped: reading what is left ends at the end of the stream, after far less than the table.
        assert hostile.closed_within(10) is not None, "the client that never reads is still connected"
        assert hostile.received < 8 << 20, hostile.received
        growth_mb = (peak - baseline) / 1024
        print(f"VmRSS baseline {baseline / 1024:.1f} MB, peak {peak / 1024:.1f} MB; the hostile client got {hostile.received} bytes")
        assert growth_mb < 32, f"VmRSS grew by {growth_mb:.1f} MB (baseline {baseline / 1024:.1f} MB)"
        assert server.running
    finally:
        normal.stop()
