"""Bad MQTT input (the Real time article of the DocC catalogue, "Bad packets"): raw sockets send truncated, corrupted, invalid
and randomly mutated packets. Each bad connection must be closed on its own; a paho subscriber on
another connection keeps receiving a message published after every bad client, and the server
process stays up. MQTT 5 clients get a DISCONNECT with a reason code before the close.

Runs against microlith; MICROLITH_E2E_MQTT_BROKER=mosquitto checks the plain parts against a local
mosquitto (see test_mqtt.py), where the MQTT 5 DISCONNECT reason checks are microlith's only.
"""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

from mqtt_helpers import (
    CONNACK, DISCONNECT, SUBACK, WAIT, Paho, RawClient, connect_packet, mstr, packet, publish_packet, subscribe_packet, uniq,
    varint,
)

#: Reason codes the doc allows in the DISCONNECT before a bad packet's connection closes.
MALFORMED_REASONS = {0x81, 0x82, 0x95}


class Watcher:
    """A paho subscriber and publisher that prove, after every bad client, that the broker still works."""

    def __init__(self, b):
        self.broker = b
        self.topic = f"fuzz/{uniq('alive')}"
        self.sub = Paho(b, "v5")
        self.sub.subscribe(self.topic, 1)
        self.pub = Paho(b, "v311")
        self.n = 0

    def check(self, what: str = ""):
        if self.broker.server is not None:
            assert self.broker.server.running, f"the server died after {what}\n" + self.broker.server.logs()
        self.n += 1
        payload = f"alive-{self.n}".encode()
        self.pub.publish(self.topic, payload, qos=1)
        m = self.sub.expect(lambda m: m.topic == self.topic and m.payload == payload, what=f"{payload!r} after {what}")
        assert not self.sub.disconnected.is_set(), f"the watcher was disconnected after {what}"
        return m

    def close(self):
        self.sub.close()
        self.pub.close()


@pytest.fixture(scope="module")
def watcher(broker):
    w = Watcher(broker)
    yield w
    w.close()


def connected(b, version: int) -> RawClient:
    c = RawClient(b.port)
    body = c.connect(uniq("fz"), version=version)[2]
    assert body[1] == 0, f"CONNACK {body[1]:#x}"
    return c


def assert_closed(c: RawClient, what: str, *, v5_reasons: set | None = None, b=None) -> list:
    """The broker closes the connection (within WAIT) without answering normally; with `v5_reasons`,
    its last packet must be a DISCONNECT with one of them."""
    try:
        seen = c.wait_closed(WAIT)
    finally:
        c.close()
    bad = [p for p in seen if p[0] in (CONNACK, SUBACK)]
    assert not bad, f"{what}: the broker answered {bad}"
    if v5_reasons is not None and (b is None or b.is_microlith):
        assert seen and seen[-1][0] == DISCONNECT, f"{what}: no DISCONNECT before the close (packets {seen})"
        reason = seen[-1][2][0] if seen[-1][2] else 0
        assert reason in v5_reasons, f"{what}: DISCONNECT reason {reason:#x}, expected one of {sorted(map(hex, v5_reasons))}"
    return seen


def fire_and_forget(b, data: bytes, linger: float = 0.0):
    """Sends bytes on a new connection and closes it (the broker may or may not have answered)."""
    try:
        with socket.create_connection(("127.0.0.1", b.port), timeout=1) as s:
            s.sendall(data)
            if linger:
                s.settimeout(linger)
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
    except OSError:
        pass  # the broker may reset a connection it already refused


# -- before CONNECT ----------------------------------------------------------------------------

VALID_CONNECT = connect_packet("fuzz-client", 4)
VALID_CONNECT5 = connect_packet("fuzz-client5", 5)


@pytest.mark.parametrize("version", [4, 5])
def test_truncated_connects(broker, watcher, version):
    full = connect_packet(uniq("trunc"), version, will=("fuzz/will", b"w", 1, False), username="u", password="p")
    for cut in range(1, len(full)):
        fire_and_forget(broker, full[:cut])
    watcher.check("truncated CONNECTs")


@pytest.mark.parametrize("version", [4, 5])
def test_connect_whose_length_is_shorter_than_its_content_is_closed(broker, watcher, version):
    full = connect_packet(uniq("short"), version)
    body = full[2:]
    c = RawClient(broker.port)
    c.send(bytes([0x10]) + varint(5) + body)  # claims 5 bytes: the protocol name and level only
    assert_closed(c, "CONNECT shorter than its fields")
    watcher.check("short CONNECT")


def test_five_byte_remaining_length_is_closed(broker, watcher):
    c = RawClient(broker.port)
    c.send(b"\x10\xff\xff\xff\xff\x7f" + b"\x00" * 16)
    assert_closed(c, "5-byte remaining length")
    watcher.check("5-byte varint")


@pytest.mark.parametrize("first", [0x11, 0x12, 0x18, 0x1F], ids=lambda f: f"{f:#04x}")
def test_connect_with_reserved_flags_is_closed(broker, watcher, first):
    c = RawClient(broker.port)
    c.send(bytes([first]) + VALID_CONNECT[1:])
    assert_closed(c, f"CONNECT with first byte {first:#x}")
    watcher.check("CONNECT flags")


def test_connect_with_reserved_connect_flag_bit_is_closed(broker, watcher):
    data = bytearray(connect_packet(uniq("rsv"), 4))
    # fixed header (2) + protocol name (6) + level (1) -> connect flags at index 9
    data[9] |= 0x01
    c = RawClient(broker.port)
    c.send(bytes(data))
    assert_closed(c, "reserved connect flag")
    watcher.check("reserved connect flag")


@pytest.mark.parametrize("name,level", [("MQTX", 4), ("MQTT", 9), ("MQIsdpX", 3)])
def test_connect_with_unknown_protocol_is_refused(broker, watcher, name, level):
    body = mstr(name) + bytes([level, 0x02]) + struct.pack("!H", 30) + mstr("proto")
    c = RawClient(broker.port)
    c.send(packet(0x10, body))
    try:
        seen = c.wait_closed(WAIT)
    finally:
        c.close()
    # An unknown level may be answered with CONNACK 0x01 (3.1.1) / 0x84 (5) before the close; nothing else.
    for p in seen:
        assert p[0] == CONNACK and p[2][1] in (0x01, 0x84), f"{name}/{level}: {seen}"
    watcher.check("unknown protocol")


def test_subscribe_before_connect_is_closed(broker, watcher):
    c = RawClient(broker.port)
    c.send(subscribe_packet(1, [("fuzz/#", 1)]))
    assert_closed(c, "SUBSCRIBE before CONNECT")
    watcher.check("SUBSCRIBE before CONNECT")


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\x00\x00\x00", b"\xf0\x00",
                                  publish_packet("fuzz/x", b"early")],
                         ids=["http", "zeros", "reserved-type-15", "publish-first"])
def test_garbage_instead_of_connect_is_closed(broker, watcher, data):
    c = RawClient(broker.port)
    c.send(data)
    assert_closed(c, f"{data[:20]!r} before CONNECT")
    watcher.check("garbage")


def test_huge_declared_length_is_refused(broker, watcher):
    c = RawClient(broker.port)
    c.send(b"\x10" + varint(268_435_455) + VALID_CONNECT[2:])
    assert_closed(c, "CONNECT declaring 256 MiB")
    watcher.check("huge CONNECT")


def test_random_garbage_never_hurts_the_broker(broker, watcher):
    rnd = random.Random(1234)
    for i in range(60):
        fire_and_forget(broker, bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200))))
        watcher.check(f"garbage #{i}")


# -- after CONNECT (both versions; MQTT 5 gets a DISCONNECT reason first) ------------------------

AFTER_CONNECT = {
    "qos3-publish": lambda v: bytes([0x36]) + publish_packet("fuzz/q3", b"x", qos=1, version=v)[1:],
    "publish-plus-topic": lambda v: publish_packet("fuzz/+/x", b"x", version=v),
    "publish-hash-topic": lambda v: publish_packet("fuzz/#", b"x", qos=1, version=v),
    "subscribe-bad-flags": lambda v: bytes([0x80]) + subscribe_packet(1, [("fuzz/a", 1)], v)[1:],
    "subscribe-no-filters": lambda v: packet(0x82, struct.pack("!H", 1) + (varint(0) if v == 5 else b"")),
    "five-byte-length": lambda v: b"\x30\xff\xff\xff\xff\x7f",
    "second-connect": lambda v: connect_packet(uniq("again"), v),
    "reserved-type-0": lambda v: b"\x00\x00",
    "topic-length-past-end": lambda v: packet(0x30, struct.pack("!H", 500) + b"fuzz/x"),
    "bad-utf8-topic": lambda v: packet(0x30, mstr(b"fuzz/\xff\xfe") + (varint(0) if v == 5 else b"") + b"x"),
    "qos1-publish-packet-id-0": lambda v: packet(0x32, mstr("fuzz/x") + b"\x00\x00" + (varint(0) if v == 5 else b"") + b"x"),
}


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("case", sorted(AFTER_CONNECT))
def test_bad_packet_after_connect_closes_that_connection_only(broker, watcher, case, version):
    c = connected(broker, version)
    c.send(AFTER_CONNECT[case](version))
    reasons = None
    if version == 5:
        reasons = MALFORMED_REASONS | ({0x90} if "topic" in case or "wildcard" in case else set())
    assert_closed(c, case, v5_reasons=reasons, b=broker)
    watcher.check(case)


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
@pytest.mark.parametrize("filter_", ["fuzz/a#", "fuzz/#/b", "fuzz/a+/b", "fuzz/+b"])
def test_invalid_topic_filter_is_refused(broker, watcher, version, filter_):
    """A wildcard not filling a whole level: either a failure SUBACK (0x80; MQTT 5 0x8F or another
    code >= 0x80) on a connection that stays usable, or the connection closed as for a bad packet."""
    c = connected(broker, version)
    c.send(subscribe_packet(1, [(filter_, 1)], version))
    try:
        p = c.read_packet()
    except OSError:
        p = None
    if p is not None and p[0] == SUBACK:
        code = p[2][-1]
        assert code >= 0x80, f"{filter_} granted ({code:#x})"
        c.send(subscribe_packet(2, [("fuzz/fine", 1)], version))
        p = c.read_packet()
        assert p is not None and p[0] == SUBACK and p[2][-1] < 0x80, f"connection unusable after a refused filter: {p}"
        c.close()
    elif p is not None:
        assert p[0] == DISCONNECT and version == 5 and p[2][0] in MALFORMED_REASONS | {0x8F}, p
        c.wait_closed()
    watcher.check(f"filter {filter_}")


@pytest.mark.parametrize("version", [4, 5], ids=["v311", "v5"])
def test_packet_over_maximum_size_after_connect(broker, watcher, version):
    c = connected(broker, version)
    # Declares 2 MiB (over the 1 MiB default) and sends only the start of it.
    c.send(b"\x30" + varint(2 * 1024 * 1024) + mstr("fuzz/big") + b"x" * 1000)
    assert_closed(c, "2 MiB PUBLISH", v5_reasons={0x95} | MALFORMED_REASONS if version == 5 else None, b=broker)
    watcher.check("oversized packet")


def test_v5_invalid_property_is_malformed(broker, watcher):
    c = connected(broker, 5)
    body = mstr("fuzz/props") + varint(2) + b"\xff\x00" + b"payload"  # property 0xFF does not exist
    c.send(packet(0x30, body))
    assert_closed(c, "unknown PUBLISH property", v5_reasons=MALFORMED_REASONS, b=broker)
    watcher.check("bad property")


# -- seeded mutations of valid packet sequences --------------------------------------------------


def valid_sequences(rnd: random.Random):
    cid = f"mut-{rnd.randrange(10**6)}"
    v = rnd.choice([4, 5])
    conn = connect_packet(cid, v, keepalive=rnd.choice([0, 5, 60]), clean=rnd.random() < 0.8,
                          will=("fuzz/mut/will", b"w", 1, False) if rnd.random() < 0.3 else None,
                          username="u" if rnd.random() < 0.2 else None)
    tail = rnd.choice([
        b"",
        subscribe_packet(rnd.randrange(1, 65535), [("fuzz/mut/+", 1), ("fuzz/mut/#", 0)], v),
        publish_packet("fuzz/mut/a", b'{"x": 1}', qos=1, pid=rnd.randrange(1, 65535), version=v),
        publish_packet("fuzz/mut/r", b"retained", qos=0, retain=True, version=v),
        publish_packet("Sensor/mut-" + str(rnd.randrange(100)), b'{"room": "fuzz"}', qos=1, retain=True, version=v),
        packet(0xC0, b""),
        packet(0xA2, struct.pack("!H", 3) + (varint(0) if v == 5 else b"") + mstr("fuzz/mut/+")),  # UNSUBSCRIBE
    ])
    return conn + tail


def mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(5)
        if op == 0 and b:  # flip a byte
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        elif op == 1 and b:  # flip one bit
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif op == 2 and len(b) > 1:  # truncate
            del b[rnd.randrange(1, len(b)):]
        elif op == 3:  # insert random bytes
            i = rnd.randrange(len(b) + 1)
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        else:  # corrupt a length byte near the start
            if len(b) > 1:
                b[1] = rnd.choice([0x00, 0x7F, 0x80, 0xFF, rnd.randrange(256)])
    return bytes(b)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_mutations(broker, watcher, seed):
    rnd = random.Random(seed)
    started = time.monotonic()
    for i in range(100):
        data = mutate(valid_sequences(rnd), rnd)
        fire_and_forget(broker, data, linger=0.02)
        watcher.check(f"mutation {seed}/{i}: {data[:40].hex()}")
    assert time.monotonic() - started < 30


def test_broker_still_serves_new_clients_after_the_fuzzing(broker, watcher):
    for version in (4, 5):
        c = connected(broker, version)
        c.send(subscribe_packet(9, [("fuzz/final", 1)], version))
        p = c.read_packet()
        assert p is not None and p[0] == SUBACK, p
        c.close()
    watcher.check("the end")
    if broker.server is not None:
        assert broker.server.get("/Sensor/").status_code == 200
