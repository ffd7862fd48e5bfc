"""Connection limits answered in each protocol's terms (issue 16 scope 3).

MQTT connections over TCP and WebSocket count in `mqtt.maxConnections` and
`mqtt.maxConnectionsPerAddress`; past them a CONNECT gets a CONNACK refusal (MQTT 5.0 §3.2.2.2:
0x89 Server busy, 0x97 Quota exceeded; 3.1.1 §3.2.2.3: 0x03 Server unavailable) and the connection
is closed [MQTT-3.2.2-7]. Upgraded WebSockets count in `http.maxConnections` for as long as they
are open: past it, HTTP gets 503.
"""

from __future__ import annotations

import socket
import time

import pytest

from mqtt_helpers import Paho, RawClient, connect_packet, microlith_broker

try:
    from websockets.sync.client import connect as ws_connect
except ImportError as e:  # a missing client is a failure of the set-up, never a skip
    raise ImportError("websockets is needed: pip install -r e2e/requirements.txt") from e

SCHEMA = """
type Todo @table @export {
    id: ID @primaryKey
    title: String
}
"""


def refusal_code(port: int, version: int) -> int:
    """A raw CONNECT on a new TCP connection: the CONNACK's reason code; asserts the close after."""
    client = RawClient(port)
    body = client.connect(version=version)[2]
    assert client.wait_closed(3) == [], "the refused connection was left open"
    return body[1]


def ws_connack_code(port: int) -> int:
    """A CONNECT over a WebSocket with subprotocol mqtt: the CONNACK's reason code."""
    with ws_connect(f"ws://127.0.0.1:{port}/mqtt", subprotocols=["mqtt"], open_timeout=10) as ws:
        ws.send(connect_packet("over-ws", 5))
        frame = ws.recv(timeout=10)
        assert frame[:1] == bytes([0x20]), frame[:10]
        return frame[3]


def test_past_mqtt_max_connections_a_connect_is_refused_with_server_busy(factory):
    broker = microlith_broker(factory, yaml="mqtt:\n  maxConnections: 2\n")
    holders = [Paho(broker, "v5"), Paho(broker, "v5")]
    try:
        assert refusal_code(broker.port, 5) == 0x89
        assert refusal_code(broker.port, 4) == 0x03
        # MQTT over WebSocket draws on the same budget.
        assert ws_connack_code(broker.ws_port) == 0x89
    finally:
        holders[0].disconnect()
    # A freed place is taken again.
    deadline = time.monotonic() + 5
    while True:
        client = RawClient(broker.port)
        if client.connect(version=5)[2][1] == 0:
            break
        assert time.monotonic() < deadline, "the place of a closed connection was never given back"
        time.sleep(0.1)
    assert ws_connack_code(broker.ws_port) == 0x89
    client.close()


def test_past_mqtt_max_connections_per_address_a_connect_is_refused_with_quota_exceeded(factory):
    broker = microlith_broker(factory, yaml="mqtt:\n  maxConnectionsPerAddress: 1\n")
    # The readiness probe's connection (wait_for_port) holds the address's one place until the
    # server has seen it close: the first client tries again briefly.
    holder = Paho(broker, "v5", connect=False)
    deadline = time.monotonic() + 5
    while True:
        try:
            holder.connect()
            break
        except AssertionError as refused:
            holder.client.loop_stop()
            if "Quota exceeded" not in str(refused) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert refusal_code(broker.port, 5) == 0x97
    assert refusal_code(broker.port, 4) == 0x03
    holder.disconnect()


def test_upgraded_websockets_count_in_http_max_connections(factory):
    server = factory.server(factory.app(SCHEMA, yaml="http:\n  maxConnections: 4\n"), extra_args=["--no-mqtt"])
    sockets = [
        ws_connect(f"ws://127.0.0.1:{server.port}/Todo/", open_timeout=10, close_timeout=1).__enter__() for _ in range(4)
    ]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            head = sock.recv(200)
        assert head.startswith(b"HTTP/1.1 503"), head
    finally:
        sockets[0].close()
    deadline = time.monotonic() + 5
    while server.get("/health").status_code != 200:
        assert time.monotonic() < deadline, "a closed WebSocket's place was never given back"
        time.sleep(0.1)
    for ws in sockets[1:]:
        ws.close()
