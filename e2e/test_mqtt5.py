"""MQTT 5 message properties, message expiry and no-local with paho-mqtt (the Real time article of
the DocC catalogue, "The MQTT broker"). Each test names the OASIS MQTT 5.0 statements it checks.

Like test_mqtt.py these run against any broker: MICROLITH_E2E_MQTT_BROKER=mosquitto runs them
against a local mosquitto, a check of the tests themselves.
"""

from __future__ import annotations

import time

from mqtt_helpers import QUIET, PacketTypes, Properties, uniq

# The fixtures broker and clients are in conftest.py.


def message_properties(expiry: int | None = 60) -> Properties:
    p = Properties(PacketTypes.PUBLISH)
    p.PayloadFormatIndicator = 1
    p.ContentType = "application/json"
    p.ResponseTopic = "replies/" + uniq("r")
    p.CorrelationData = b"\x00\x01\xff"
    p.UserProperty = [("a", "1"), ("b", "2"), ("a", "3")]
    if expiry is not None:
        p.MessageExpiryInterval = expiry
    return p


def assert_forwarded(received, sent: Properties):
    assert received is not None, "no properties arrived"
    assert getattr(received, "PayloadFormatIndicator", None) == sent.PayloadFormatIndicator
    assert getattr(received, "ContentType", None) == sent.ContentType
    assert getattr(received, "ResponseTopic", None) == sent.ResponseTopic
    assert getattr(received, "CorrelationData", None) == sent.CorrelationData
    assert getattr(received, "UserProperty", None) == sent.UserProperty, "user properties unaltered and in order"


def test_request_response_properties_reach_the_subscriber(broker, clients):
    """[MQTT-3.3.2-4], [MQTT-3.3.2-15] to [MQTT-3.3.2-18], [MQTT-3.3.2-20]: the payload format
    indicator, response topic, correlation data, user properties (in order) and content type are
    sent unaltered to every subscriber; a responder can answer on the response topic."""
    base = uniq("req")
    responder = clients(broker, "v5")
    responder.subscribe(f"{base}/ask", qos=1)
    requester = clients(broker, "v5")
    sent = message_properties()
    requester.subscribe(sent.ResponseTopic, qos=1)
    requester.publish(f"{base}/ask", b'{"q":1}', qos=1, properties=sent)
    asked = responder.expect_topic(f"{base}/ask")
    assert_forwarded(asked.properties, sent)
    assert 1 <= asked.properties.MessageExpiryInterval <= 60
    answer = Properties(PacketTypes.PUBLISH)
    answer.CorrelationData = asked.properties.CorrelationData
    responder.publish(asked.properties.ResponseTopic, b'{"a":2}', qos=1, properties=answer)
    got = requester.expect_topic(sent.ResponseTopic)
    assert got.properties.CorrelationData == sent.CorrelationData


def test_an_expired_message_is_not_delivered_to_a_returning_session(broker, clients):
    """[MQTT-3.3.2-5]: a message whose expiry passed before onward delivery started is deleted for
    that subscriber; [MQTT-3.3.2-6]: one still valid carries the interval less the time it waited."""
    base = uniq("exp")
    client_id = uniq("away")
    away = clients(broker, "v5", client_id=client_id, clean=True, session_expiry=300)
    away.subscribe(f"{base}/#", qos=1)
    away.disconnect()
    publisher = clients(broker, "v5")
    publisher.publish(f"{base}/short", b"stale", qos=1, properties=message_properties(expiry=1))
    publisher.publish(f"{base}/long", b"fresh", qos=1, properties=message_properties(expiry=100))
    time.sleep(2.5)
    back = clients(broker, "v5", client_id=client_id, clean=False, session_expiry=300)
    assert back.session_present
    got = back.expect_topic(f"{base}/long")
    assert 1 <= got.properties.MessageExpiryInterval <= 98
    assert [m.topic for m in back.collect(QUIET)] == [], "the expired message must not arrive"


def test_no_local_subscription_does_not_echo_own_messages(broker, clients):
    """[MQTT-3.8.3-3]: with No Local set, messages are not forwarded to the connection whose
    ClientID published them; other subscribers still get them."""
    topic = uniq("chat") + "/room"
    a = clients(broker, "v5")
    a.subscribe(topic, qos=0, no_local=True)
    b = clients(broker, "v5")
    b.subscribe(topic, qos=0)
    a.publish(topic, b"from a", qos=0)
    assert b.expect_topic(topic).payload == b"from a"
    assert a.collect(QUIET) == [], "a no-local subscriber got its own message back"


def test_subscription_identifiers_come_back_with_matching_messages(broker, clients):
    """[MQTT-3.3.4-3], [MQTT-3.3.4-4]: a message matching several subscriptions of one client arrives
    once, carrying the subscription identifiers of all of them."""
    base = uniq("ids")
    client = clients(broker, "v5")
    client.subscribe(f"{base}/+", qos=1, identifier=3)
    client.subscribe(f"{base}/#", qos=1, identifier=4)
    publisher = clients(broker, "v5")
    publisher.publish(f"{base}/x", b"1", qos=1)
    got = client.expect_topic(f"{base}/x")
    assert sorted(got.properties.SubscriptionIdentifier) == [3, 4]
    assert client.collect(QUIET) == [], "one copy for overlapping subscriptions"


def test_shared_subscription_delivers_each_message_to_one_member(broker, clients):
    """§4.8.2 Shared Subscriptions: a message matching a shared subscription goes to one session of
    the group; every message is delivered once across the group."""
    base = uniq("shared")
    members = [clients(broker, "v5") for _ in range(2)]
    for m in members:
        m.subscribe(f"$share/workers/{base}/+", qos=1)
    publisher = clients(broker, "v5")
    for i in range(6):
        publisher.publish(f"{base}/{i}", str(i).encode(), qos=1)
    time.sleep(QUIET)
    got = [sorted(msg.payload for msg in m.collect(QUIET)) for m in members]
    assert sorted(got[0] + got[1]) == [str(i).encode() for i in range(6)], "each message once across the group"
    assert all(got), f"both members take a share: {got}"
