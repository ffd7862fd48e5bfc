"""MQTT 5 features with paho-mqtt v5 clients against the broker, plain topics only: overlapping
subscriptions, retain as published, retain handling, topic aliases from the client, the client's
maximum packet size, Server Keep Alive, SUBACK reason codes, outbound QoS 2 and will properties.
Where paho refuses to send what is under test (an invalid topic filter) a raw socket speaks MQTT 5.

Each test names the OASIS MQTT Version 5.0 statements (or sections) it checks. Message expiry for
an offline session and request/response properties are in test_mqtt5.py and not repeated here.

Like test_mqtt5.py these run against any broker (MICROLITH_E2E_MQTT_BROKER=mosquitto checks the
tests themselves); assertions on microlith's own documented choices (one copy for overlapping
subscriptions, the keep-alive cap, 0x8F for a malformed filter) say so.
"""

from __future__ import annotations

import struct

import pytest

from mqtt_helpers import (
    QUIET, SUBACK, WAIT, PacketTypes, Paho, Properties, SubscribeOptions, mqtt, packet, subscribe_packet, uniq,
)

# The fixtures broker, clients and raw are in conftest.py; v5clients is below.

PUBLISH, PINGRESP = 3, 13


class Paho5(Paho):
    """A paho MQTT 5 client that keeps the CONNACK properties and may send its own keep-alive and
    CONNECT properties (the shared Paho helper always asks for keep-alive 30 and no properties
    beyond the session expiry)."""

    def __init__(self, broker, *, keepalive: int = 30, connect_properties: dict | None = None, **kwargs):
        self.keepalive = keepalive
        self.connect_properties = dict(connect_properties or {})
        self.connack_properties = None
        super().__init__(broker, "v5", **kwargs)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack_properties = properties
        super()._on_connect(client, userdata, flags, reason_code, properties)

    def connect(self, expect_success: bool = True):
        props = Properties(PacketTypes.CONNECT)
        if self.session_expiry is not None:
            props.SessionExpiryInterval = self.session_expiry
        for name, value in self.connect_properties.items():
            setattr(props, name, value)
        self.connected.clear()
        self.disconnected.clear()
        self.client.connect(self.broker.host, self.broker.port, keepalive=self.keepalive, clean_start=self.clean,
                            properties=props)
        self.client.loop_start()
        assert self.connected.wait(WAIT), f"no CONNACK within {WAIT}s"
        session_present, rc = self.connack
        assert not rc.is_failure or not expect_success, f"CONNECT refused: {rc}"
        return self

    def connack_property(self, name: str):
        return getattr(self.connack_properties, name, None)


@pytest.fixture
def v5clients():
    """Makes Paho5 clients (connected) and closes them all at the end of the test."""
    made = []

    def build(broker, **kwargs):
        c = Paho5(broker, connect=False, **kwargs)
        made.append(c)
        return c.connect()

    yield build
    for c in made:
        c.close()


def subscribe_with(c: Paho, topic, options: SubscribeOptions | None = None, identifier: int | None = None) -> list:
    """SUBSCRIBE through the raw paho client with explicit subscription options (or a list of
    (filter, options) pairs as `topic`); returns the SUBACK reason codes as integers."""
    props = None
    if identifier is not None:
        props = Properties(PacketTypes.SUBSCRIBE)
        props.SubscriptionIdentifier = identifier
    if options is None:
        result, mid = c.client.subscribe(topic, properties=props)
    else:
        result, mid = c.client.subscribe(topic, options=options, properties=props)
    assert result == mqtt.MQTT_ERR_SUCCESS, result
    return [rc.value for rc in c._wait_ack(("sub", mid), f"SUBSCRIBE {topic}")]


def alias(n: int) -> Properties:
    p = Properties(PacketTypes.PUBLISH)
    p.TopicAlias = n
    return p


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value, mult = 0, 1
    while True:
        b = data[at]
        value += (b & 0x7F) * mult
        mult *= 128
        at += 1
        if not b & 0x80:
            return value, at


def suback(body: bytes) -> tuple[int, list[int]]:
    """(packet identifier, reason codes) of an MQTT 5 SUBACK body."""
    pid = struct.unpack("!H", body[:2])[0]
    props_len, at = read_varint(body, 2)
    return pid, list(body[at + props_len:])


# == overlapping subscriptions ===================================================================


@pytest.mark.parametrize("identifiers", [False, True], ids=["no-ids", "ids"])
@pytest.mark.parametrize("order", ["plus-first", "hash-first"])
def test_overlapping_subscriptions_deliver_at_the_highest_qos(broker, clients, order, identifiers):
    """[MQTT-3.3.4-2]: when several subscriptions of one client match, the message is delivered
    respecting the highest QoS among them (`+` at QoS 2 and `#` at QoS 1: a QoS 2 publish arrives at
    QoS 2, a QoS 1 one at QoS 1, [MQTT-3.8.4-8]). [MQTT-3.3.4-3], [MQTT-3.3.4-4]: with identifiers on
    both subscriptions the single copy carries both. microlith sends one copy only (documented
    choice; the statement would allow extra copies)."""
    base = uniq("overlap")
    sub = clients(broker, "v5")
    filters = [(f"{base}/+", 2, 11), (f"{base}/#", 1, 22)]
    if order == "hash-first":
        filters.reverse()
    for topic_filter, qos, ident in filters:
        assert sub.subscribe(topic_filter, qos, identifier=ident if identifiers else None) == [qos]
    pub = clients(broker, "v5")
    pub.publish(f"{base}/b", b"two", qos=2)
    pub.publish(f"{base}/b", b"one", qos=1)
    got = [sub.expect_topic(f"{base}/b"), sub.expect_topic(f"{base}/b")]
    got += sub.collect(QUIET)
    # The two publishes differ in QoS, so their order is not fixed ([MQTT-4.6.0-5] is per topic and QoS).
    got.sort(key=lambda m: (m.payload, m.qos))
    # [MQTT-3.3.4-2] first: a copy at the highest QoS (extra copies would be the next question).
    assert max((m.qos for m in got if m.payload == b"two"), default=None) == 2, got
    assert max((m.qos for m in got if m.payload == b"one"), default=None) == 1, got
    assert [(m.topic, m.payload, m.qos) for m in got] == [(f"{base}/b", b"one", 1), (f"{base}/b", b"two", 2)], \
        "one copy for overlapping subscriptions"
    if identifiers:
        for m in got:
            assert sorted(getattr(m.properties, "SubscriptionIdentifier", [])) == [11, 22], m.properties


# == retain as published / retain handling =======================================================


def test_retain_as_published_keeps_the_retain_flag_on_live_messages(broker, clients):
    """[MQTT-3.3.1-12]: without Retain As Published a forwarded message has RETAIN 0 whatever the
    publisher set; [MQTT-3.3.1-13]: with it, RETAIN is the publisher's flag (1 for a retained
    publish, 0 for a plain one)."""
    topic = uniq("rap") + "/state"
    keep = clients(broker, "v5")
    assert subscribe_with(keep, topic, SubscribeOptions(qos=1, retainAsPublished=True)) == [1]
    plain = clients(broker, "v5")
    assert subscribe_with(plain, topic, SubscribeOptions(qos=1, retainAsPublished=False)) == [1]
    pub = clients(broker, "v5")
    try:
        pub.publish(topic, b"retained", qos=1, retain=True)
        pub.publish(topic, b"live", qos=1, retain=False)
        kept = [keep.expect_topic(topic), keep.expect_topic(topic)]
        assert [(m.payload, m.retain) for m in kept] == [(b"retained", True), (b"live", False)]
        flat = [plain.expect_topic(topic), plain.expect_topic(topic)]
        assert [(m.payload, m.retain) for m in flat] == [(b"retained", False), (b"live", False)]
    finally:
        pub.publish(topic, b"", qos=1, retain=True)  # leave no retained message behind


@pytest.mark.parametrize("handling, first, second", [
    (SubscribeOptions.RETAIN_SEND_ON_SUBSCRIBE, [b"kept"], [b"kept"]),
    (SubscribeOptions.RETAIN_SEND_IF_NEW_SUB, [b"kept"], []),
    (SubscribeOptions.RETAIN_DO_NOT_SEND, [], []),
], ids=["rh0", "rh1", "rh2"])
def test_retain_handling_decides_what_a_subscribe_sends(broker, clients, handling, first, second):
    """[MQTT-3.3.1-9]: Retain Handling 0 sends the matching retained message on every SUBSCRIBE
    (also when it replaces the subscription, [MQTT-3.8.4-4]); [MQTT-3.3.1-10]: 1 sends it only when
    the subscription did not exist yet; [MQTT-3.3.1-11]: 2 never sends it at subscribe time. Live
    messages still arrive in every case."""
    topic = uniq("rh") + "/state"
    pub = clients(broker, "v5")
    pub.publish(topic, b"kept", qos=1, retain=True)
    try:
        c = clients(broker, "v5")
        seen = []
        for _ in range(2):
            assert subscribe_with(c, topic, SubscribeOptions(qos=1, retainHandling=handling)) == [1]
            got = c.collect(QUIET)
            assert all(m.retain for m in got), f"retained messages sent on subscribe carry RETAIN 1: {got}"
            seen.append([m.payload for m in got])
        assert seen == [first, second]
        pub.publish(topic, b"live", qos=1)
        m = c.expect_topic(topic)
        assert (m.payload, m.retain) == (b"live", False)
    finally:
        pub.publish(topic, b"", qos=1, retain=True)


# == topic aliases ==================================================================================


def test_topic_alias_from_the_client_reaches_subscribers_under_the_full_name(broker, clients, v5clients):
    """[MQTT-3.3.2-12]: the server accepts every Topic Alias from 1 to the Topic Alias Maximum of its
    CONNACK: a PUBLISH with a topic and an alias sets the mapping, one with an empty topic uses it,
    a later topic with the same alias replaces it (§3.3.2.3.4). Subscribers get the full topic name
    ([MQTT-3.3.2-3]) and, having sent no Topic Alias Maximum, no alias ([MQTT-3.1.2-27])."""
    base = uniq("alias")
    first, second = f"{base}/a/rather/long/topic/name", f"{base}/another/long/topic/name"
    sub = clients(broker, "v5")
    sub.subscribe(f"{base}/#", 1)
    pub = v5clients(broker)
    maximum = pub.connack_property("TopicAliasMaximum") or 0
    assert maximum >= 1, f"the broker offers no topic aliases (CONNACK {pub.connack_properties})"
    expected = []
    for n in sorted({1, maximum}):
        pub.publish(first, f"set {n}".encode(), qos=1, properties=alias(n))
        pub.publish("", f"use {n}".encode(), qos=1, properties=alias(n))
        pub.publish(second, f"reset {n}".encode(), qos=1, properties=alias(n))
        pub.publish("", f"reuse {n}".encode(), qos=1, properties=alias(n))
        expected += [(first, f"set {n}"), (first, f"use {n}"), (second, f"reset {n}"), (second, f"reuse {n}")]
    got = [sub.expect() for _ in expected]
    # Order is only fixed per topic ([MQTT-4.6.0-5]); two topics are used, so compare as sets.
    assert sorted((m.topic, m.payload.decode()) for m in got) == sorted(expected)
    assert all(getattr(m.properties, "TopicAlias", None) is None for m in got), "an alias the client never allowed"
    assert sub.collect(QUIET) == []
    assert not pub.disconnected.is_set()


@pytest.mark.parametrize("case", ["above-maximum", "never-set"])
def test_an_invalid_topic_alias_ends_the_connection(broker, clients, v5clients, case):
    """§3.3.2.3.4 and [MQTT-3.3.2-9]: a Topic Alias above the Topic Alias Maximum of CONNACK is
    answered with DISCONNECT 0x94 (Topic Alias invalid); an empty topic with an alias that was never
    given a topic on the connection is a Protocol Error, DISCONNECT 0x82. The message goes nowhere."""
    base = uniq("badalias")
    sub = clients(broker, "v5")
    sub.subscribe(f"{base}/#", 1)
    pub = v5clients(broker)
    maximum = pub.connack_property("TopicAliasMaximum") or 0
    assert 1 <= maximum < 65535, f"CONNACK Topic Alias Maximum {maximum}"
    if case == "above-maximum":
        pub.client.publish(f"{base}/x", b"too far", qos=1, properties=alias(maximum + 1))
        expected = 0x94
    else:
        pub.client.publish("", b"unknown", qos=1, properties=alias(1))
        expected = 0x82
    # (info.rc is not checked: paho may turn it into MQTT_ERR_NO_CONN once the broker's DISCONNECT,
    # an answer to this very PUBLISH, has closed the socket before publish() returned.)
    assert pub.disconnected.wait(WAIT), "the connection stayed open"
    assert pub.disconnect_reason is not None and pub.disconnect_reason.value == expected, \
        f"DISCONNECT {pub.disconnect_reason!r}, expected {expected:#04x}"
    assert sub.collect(QUIET) == []


# == the client's maximum packet size =================================================================


def test_a_message_over_the_client_maximum_packet_size_is_skipped(broker, clients, v5clients):
    """[MQTT-3.1.2-24]: the server sends no packet larger than the client's Maximum Packet Size;
    [MQTT-3.1.2-25]: it drops such a message for that client and goes on as if it had been sent, so
    (with Receive Maximum 1) it holds no in-flight slot and the next small message still arrives. A
    client without the limit gets both."""
    topic = uniq("mps") + "/t"
    small = v5clients(broker, connect_properties={"MaximumPacketSize": 100, "ReceiveMaximum": 1})
    assert small.subscribe(topic, 1) == [1]
    roomy = clients(broker, "v5")
    assert roomy.subscribe(topic, 1) == [1]
    pub = clients(broker, "v5")
    pub.publish(topic, b"x" * 500, qos=1)
    pub.publish(topic, b"small", qos=1)
    assert [m.payload for m in (roomy.expect_topic(topic), roomy.expect_topic(topic))] == [b"x" * 500, b"small"]
    m = small.expect()
    assert (m.topic, m.payload) == (topic, b"small")
    assert small.collect(QUIET) == []
    assert not small.disconnected.is_set(), f"disconnected: {small.disconnect_reason!r}"


# == Server Keep Alive ================================================================================


@pytest.mark.parametrize("asked", [0, 65535])
def test_server_keep_alive_is_announced_when_the_broker_caps_it(broker, v5clients, asked):
    """[MQTT-3.2.2-21], [MQTT-3.2.2-22]: a server that will not use the client's Keep Alive must say
    which it uses in CONNACK's Server Keep Alive, and the client then uses that. microlith holds a
    client asking for none (0) or a very long one to mqtt.maxKeepAliveSeconds (3600 by default)."""
    c = v5clients(broker, keepalive=asked)
    server_keep_alive = c.connack_property("ServerKeepAlive")
    if broker.is_microlith:
        assert server_keep_alive == 3600, f"Server Keep Alive in CONNACK {c.connack_properties}"
    elif asked == 0 or server_keep_alive is not None:  # another broker may honour 65535 and say nothing
        assert server_keep_alive is not None and server_keep_alive > 0, c.connack_properties
    assert not c.disconnected.is_set()


# == SUBACK reason codes ==============================================================================


def test_suback_grants_the_qos_asked_in_order(broker, clients):
    """[MQTT-3.8.4-5], [MQTT-3.8.4-6], [MQTT-3.9.3-1]: one SUBACK with a reason code per filter in
    the filters' order; [MQTT-3.8.4-7]: each is the QoS granted (0x00, 0x01, 0x02 as asked)."""
    base = uniq("grant")
    c = clients(broker, "v5")
    asked = [2, 0, 1]
    codes = subscribe_with(c, [(f"{base}/{q}", SubscribeOptions(qos=q)) for q in asked])
    assert codes == asked


def test_suback_refuses_invalid_filters_with_0x8f(broker, clients, raw):
    """[MQTT-3.9.3-1], [MQTT-3.9.3-2]: each filter gets its own Subscribe Reason Code, in order. A
    `#` that is not the last level ([MQTT-4.7.1-1]) and shared subscriptions whose ShareName is
    empty or has `+`/`#` or is not followed by `/` and a filter ([MQTT-4.8.2-1], [MQTT-4.8.2-2]) get
    0x8F Topic Filter invalid (microlith's documented answer; paho refuses to send them, so a raw
    socket does); the valid filters of the same packet are granted and work."""
    base = uniq("badfilter")
    c = raw(broker.port)
    c.connect(version=5)
    filters = [
        (f"{base}/two", 2),
        (f"{base}/#/b", 1),
        (f"{base}/zero", 0),
        (f"$share/a+b/{base}/x", 1),
        (f"$share/g#/{base}/x", 1),
        (f"$share//{base}/x", 1),
        ("$share/group", 1),
        (f"{base}/one", 1),
    ]
    c.send(subscribe_packet(7, filters, version=5))
    p = c.read_packet()
    assert p is not None and p[0] == SUBACK, f"expected SUBACK, got {p}"
    pid, codes = suback(p[2])
    assert pid == 7
    assert codes == [0x02, 0x8F, 0x00, 0x8F, 0x8F, 0x8F, 0x8F, 0x01], [hex(x) for x in codes]
    c.send(packet(0xC0, b""))  # PINGREQ: the connection is still in use
    p = c.read_packet()
    assert p is not None and p[0] == PINGRESP, f"expected PINGRESP, got {p}"
    clients(broker, "v5").publish(f"{base}/zero", b"granted", qos=0)
    p = c.read_packet()
    assert p is not None and p[0] == PUBLISH and p[2].endswith(b"granted"), p


# == outbound QoS 2 ===================================================================================


def test_qos2_messages_reach_a_qos2_subscriber_exactly_once_and_in_order(broker, clients):
    """§4.3.3 (QoS 2 exactly once, paho completing PUBREC/PUBREL/PUBCOMP), [MQTT-3.8.4-8] (delivered
    at QoS 2), [MQTT-4.6.0-5], [MQTT-4.6.0-6] (same topic and QoS from one publisher, non-shared
    subscription: in the order published)."""
    topic = uniq("qos2") + "/t"
    sub = clients(broker, "v5")
    assert sub.subscribe(topic, 2) == [2]
    pub = clients(broker, "v5")
    sent = [f"m{i}".encode() for i in range(10)]
    for payload in sent:
        pub.publish(topic, payload, qos=2)
    got = [sub.expect_topic(topic) for _ in sent]
    assert [(m.payload, m.qos) for m in got] == [(p, 2) for p in sent]
    assert sub.collect(QUIET) == [], "a QoS 2 message arrived twice"


# == will properties ==================================================================================


def test_will_properties_reach_the_subscriber_when_the_connection_drops(broker, clients):
    """[MQTT-3.1.2-8]: the will is published when the connection closes without DISCONNECT; its
    properties (§3.1.3.2) go with it like a PUBLISH's: payload format indicator, content type,
    response topic and correlation data unaltered ([MQTT-3.3.2-4], [MQTT-3.3.2-20],
    [MQTT-3.3.2-15], [MQTT-3.3.2-16]) and user properties in order ([MQTT-3.1.3-10])."""
    will_topic = uniq("will5") + "/status"
    watcher = clients(broker, "v5")
    assert watcher.subscribe(will_topic, 1) == [1]
    props = Properties(PacketTypes.WILLMESSAGE)
    props.PayloadFormatIndicator = 1
    props.ContentType = "application/json"
    props.ResponseTopic = will_topic + "/reply"
    props.CorrelationData = b"\x00will\xff"
    props.UserProperty = [("k", "1"), ("z", "2"), ("k", "3")]
    c = Paho(broker, "v5", connect=False)
    c.client.will_set(will_topic, b'{"gone":true}', qos=1, properties=props)
    try:
        c.connect()
        c.client.loop_stop()
        sock = c.client.socket()
        assert sock is not None
        sock.close()  # the connection dies without a DISCONNECT
        m = watcher.expect_topic(will_topic)
        assert (m.payload, m.qos, m.retain) == (b'{"gone":true}', 1, False)
        got = m.properties
        assert getattr(got, "PayloadFormatIndicator", None) == 1
        assert getattr(got, "ContentType", None) == "application/json"
        assert getattr(got, "ResponseTopic", None) == will_topic + "/reply"
        assert getattr(got, "CorrelationData", None) == b"\x00will\xff"
        assert getattr(got, "UserProperty", None) == [("k", "1"), ("z", "2"), ("k", "3")]
    finally:
        c.close()
