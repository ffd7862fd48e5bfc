"""Persistent MQTT sessions and plain retained messages survive a restart of the broker, graceful
(SIGTERM) or a crash (SIGKILL), with a third-party client (paho-mqtt).

MQTT 5.0 §4.1 [MQTT-4.1.0-1]: the server keeps the session state of a client that asked for a
persistent session (a Session Expiry Interval above 0; clean session 0 in 3.1.1) for that interval;
the session state includes the subscriptions and the QoS 1 and 2 messages not yet sent or not yet
acknowledged. §3.3.1.3 [MQTT-3.3.1-5]: a retained message is stored and sent to future
subscribers. The broker writes them to the store before it acknowledges the publish, so a
message the publisher saw acknowledged is never lost, whatever happens to the process after.
"""

from __future__ import annotations

import threading
import time

import pytest

from mqtt_helpers import MosquittoSub, Paho, microlith_broker, mosquitto_pub, uniq, wait_for_port

#: How long a returning client waits for what it is owed.
OWED = 20.0


def restart(broker, how: str):
    """Stops the broker's server (`kill`: SIGKILL, `term`: SIGTERM; `start`: it is down already) and
    starts it again on the same folders."""
    server = broker.server
    if how == "kill":
        server.kill()
    elif how == "term":
        assert server.stop() == 0, server.logs()
    server.start()
    broker.port = server.mqtt_port
    broker.ws_port = server.port
    wait_for_port(broker.port)


def receive_all(client: Paho, topics: list[str], timeout: float = OWED) -> list:
    """Messages until every one of `topics` has come (duplicates kept, to be counted)."""
    wanted, seen, out = set(topics), set(), []
    deadline = time.monotonic() + timeout
    while not wanted <= seen:
        left = deadline - time.monotonic()
        if left <= 0:
            missing = sorted(wanted - seen)
            raise AssertionError(f"{len(missing)} of {len(wanted)} messages never came back, e.g. {missing[:5]}")
        out += client.collect(min(left, 0.5))
        seen = {m.topic for m in out}
    return out


@pytest.mark.parametrize("version", ["v5", "v311"])
@pytest.mark.parametrize("qos", [1, 2])
@pytest.mark.parametrize("how", ["kill", "term"])
def test_messages_owed_to_a_persistent_session_survive_a_restart(factory, how, qos, version):
    """[MQTT-4.1.0-1] Messages queued for an offline persistent session, each acknowledged to its
    publisher, all come back after a SIGKILL or SIGTERM of the broker, in order, with the subscription."""
    broker = microlith_broker(factory)
    prefix = uniq("owed")
    client_id = uniq("away")
    away = Paho(broker, version, client_id=client_id, clean=False if version == "v311" else True, session_expiry=3600)
    away.subscribe(f"{prefix}/#", qos=qos)
    away.disconnect()

    publisher = Paho(broker, "v5")
    topics = [f"{prefix}/{i}" for i in range(60)]
    for i, topic in enumerate(topics):
        publisher.publish(topic, f"m{i}".encode(), qos=qos)

    restart(broker, how)

    back = Paho(broker, version, client_id=client_id, clean=False, session_expiry=3600)
    assert back.session_present, "the session did not survive the restart"
    got = receive_all(back, topics)
    assert [m.topic for m in got] == topics, "messages came back out of order or twice"
    assert all(m.qos == qos for m in got)
    # The subscription came back too: a message published now arrives.
    after = Paho(broker, "v5")
    after.publish(f"{prefix}/after", b"later", qos=qos)
    assert back.expect_topic(f"{prefix}/after").payload == b"later"


@pytest.mark.parametrize("version", ["v5", "v311"])
def test_mosquitto_clients_get_what_was_queued_for_them_after_a_sigkill(factory, mosquitto_clients, version):
    """The same with mosquitto_sub / mosquitto_pub (Debian's mosquitto-clients): a persistent
    session (`-c -i ID`, MQTT 5 with `-x 3600`) gets its queued QoS 1 messages after a SIGKILL."""
    broker = microlith_broker(factory)
    topic = f"{uniq('mosq')}/x"
    session = ("-c", "-i", uniq("mosq-sub")) + (("-x", "3600") if version == "v5" else ())
    MosquittoSub(broker, version, topic, qos=1, extra=session).stop()
    for i in range(5):
        mosquitto_pub(broker, "v5", topic, f"m{i}", qos=1)

    restart(broker, "kill")

    # (No -C: the queued messages may come before the SUBACK of its SUBSCRIBE, which it waits for.)
    back = MosquittoSub(broker, version, topic, qos=1, extra=session)
    try:
        got = back.expect(5, timeout=10)
        more = back.lines.qsize()
    finally:
        back.stop()
    assert [m.payload for m in got] == [f"m{i}".encode() for i in range(5)]
    assert more == 0, "a message came twice"


def test_a_crash_mid_stream_loses_no_acknowledged_message(factory):
    """SIGKILL while a publisher streams QoS 1 messages to a topic a persistent session subscribes to:
    every message whose PUBACK reached the publisher is delivered after the restart."""
    broker = microlith_broker(factory)
    prefix = uniq("stream")
    client_id = uniq("keeper")
    keeper = Paho(broker, "v5", client_id=client_id, session_expiry=3600)
    keeper.subscribe(f"{prefix}/#", qos=1)
    keeper.disconnect()

    publisher = Paho(broker, "v5")
    acknowledged: list[str] = []
    stop = threading.Event()

    def stream():
        i = 0
        while not stop.is_set():
            topic = f"{prefix}/{i}"
            info = publisher.client.publish(topic, b"x" * 100, qos=1)
            info.wait_for_publish(3)
            if not info.is_published():
                return
            acknowledged.append(topic)
            i += 1

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    broker.server.kill()
    stop.set()
    thread.join(10)
    assert len(acknowledged) >= 200, "the publisher did not get going"
    restart(broker, "start")

    back = Paho(broker, "v5", client_id=client_id, clean=False, session_expiry=3600)
    assert back.session_present
    got = receive_all(back, acknowledged, timeout=30)
    topics = [m.topic for m in got]
    # Unacknowledged ones (in flight at the kill) may come too, after the acknowledged ones.
    assert topics[: len(acknowledged)] == acknowledged


@pytest.mark.parametrize("how", ["kill", "term"])
def test_retained_messages_of_plain_topics_survive_a_restart(factory, how):
    """[MQTT-3.3.1-5] A retained message is kept for future subscribers across a restart; an empty
    retained publish [MQTT-3.3.1-10] removes one for good."""
    broker = microlith_broker(factory)
    prefix = uniq("cfg")
    publisher = Paho(broker, "v5")
    publisher.publish(f"{prefix}/kept", b"on", qos=1, retain=True)
    publisher.publish(f"{prefix}/gone", b"soon gone", qos=1, retain=True)
    publisher.publish(f"{prefix}/gone", b"", qos=1, retain=True)

    restart(broker, how)

    late = Paho(broker, "v5")
    late.subscribe(f"{prefix}/#", qos=1)
    got = late.collect(1.5)
    assert [(m.topic, m.payload, m.retain) for m in got] == [(f"{prefix}/kept", b"on", True)]


def test_a_session_that_ended_is_not_brought_back(factory):
    """A client that reconnects with clean start and no expiry ends its session [MQTT-3.1.2-4]; the
    restart does not bring it, or what was queued for it, back."""
    broker = microlith_broker(factory)
    prefix = uniq("ended")
    client_id = uniq("done")
    first = Paho(broker, "v5", client_id=client_id, session_expiry=3600)
    first.subscribe(f"{prefix}/#", qos=1)
    first.disconnect()
    Paho(broker, "v5").publish(f"{prefix}/1", b"queued", qos=1)
    ended = Paho(broker, "v5", client_id=client_id, clean=True, session_expiry=0)
    ended.collect(0.3)
    ended.disconnect()

    restart(broker, "kill")

    back = Paho(broker, "v5", client_id=client_id, clean=False, session_expiry=3600)
    assert not back.session_present
    assert back.collect(1.0) == []
