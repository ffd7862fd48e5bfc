"""The MQTT broker (the Real time article of the DocC catalogue, "The MQTT broker") with real clients: paho-mqtt (MQTT 3.1.1
and 5), mosquitto_pub / mosquitto_sub subprocesses, and raw sockets where a client library would
hide what is under test (wills after a dropped socket, keep-alive, CONNACK codes, takeover).

Plain-topic tests run against any broker: set MICROLITH_E2E_MQTT_BROKER=mosquitto to run them
against a local `mosquitto` instead of microlith (a check of the tests themselves); the table-topic
tests then say they need microlith and are skipped with that reason. Against microlith (the
default) nothing is skipped, and missing mosquitto clients are a failure, not a skip.
"""

from __future__ import annotations

import json
import queue
import subprocess
import time

import pytest

from mqtt_helpers import (
    DISCONNECT, PUBACK, QUIET, WAIT, Msg, Paho, both, disconnect_packet, eventually, mosquitto_pub, packet, publish_packet,
    uniq,
)

# The fixtures broker, auth_broker, mosquitto_clients, clients, raw and subs are in conftest.py.


# == plain topics ==============================================================================


@both
def test_qos0_and_qos1_publish_subscribe(broker, clients, version):
    topic = f"plain/{uniq()}/a"
    sub = clients(broker, version)
    assert sub.subscribe(topic, 1) == [1]
    pub = clients(broker, version)
    pub.publish(topic, b"zero", qos=0)
    rc = pub.publish(topic, b"one", qos=1)
    if version == "v5":
        assert rc.value in (0, 0x10), rc  # success, or "no matching subscribers" is not the case here
    got = [sub.expect_topic(topic), sub.expect_topic(topic)]
    assert sorted((m.payload, m.qos, m.retain) for m in got) == [(b"one", 1, False), (b"zero", 0, False)]
    # A QoS 0 subscription downgrades QoS 1 deliveries.
    sub0 = clients(broker, version)
    assert sub0.subscribe(topic, 0) == [0]
    pub.publish(topic, b"down", qos=1)
    m = sub0.expect_topic(topic)
    assert (m.payload, m.qos) == (b"down", 0)


@both
def test_qos2_publish_completes_its_handshake(broker, clients, version):
    topic = f"plain/{uniq()}/q2"
    sub = clients(broker, version)
    assert sub.subscribe(topic, 2) == [2]
    pub = clients(broker, version)
    pub.publish(topic, b"exactly", qos=2)  # waits for PUBCOMP
    m = sub.expect_topic(topic)
    assert (m.payload, m.qos) == (b"exactly", 2)


@both
def test_plus_and_hash_wildcards(broker, clients, version):
    base = f"wild/{uniq()}"
    plus = clients(broker, version)
    plus.subscribe(f"{base}/+/temp", 1)
    hash_ = clients(broker, version)
    hash_.subscribe(f"{base}/#", 1)
    pub = clients(broker, version)
    for topic in (f"{base}/kitchen/temp", f"{base}/kitchen/humidity", f"{base}/a/b/temp", base):
        pub.publish(topic, topic.encode(), qos=1)
    pub.publish(f"{base}/end/temp", b"end", qos=1)
    got_plus = [m.topic for m in plus.until_topic(f"{base}/end/temp")]
    # `#` also matches the parent level itself.
    got_hash = [m.topic for m in hash_.until_topic(f"{base}/end/temp")]
    got_plus += [m.topic for m in plus.collect(0.2)]
    assert sorted(set(got_plus)) == sorted({f"{base}/kitchen/temp", f"{base}/end/temp"}), got_plus
    assert sorted(set(got_hash)) == sorted({f"{base}/kitchen/temp", f"{base}/kitchen/humidity", f"{base}/a/b/temp",
                                            base, f"{base}/end/temp"}), got_hash


@both
def test_mosquitto_clients_qos0_qos1_and_wildcard(broker, mosquitto_clients, subs, version):
    base = f"cli/{uniq()}"
    sub = subs(broker, version, f"{base}/+", f"{base}/deep/#", qos=1)
    mosquitto_pub(broker, version, f"{base}/x", "q0", qos=0)
    mosquitto_pub(broker, version, f"{base}/y", "q1", qos=1)
    mosquitto_pub(broker, version, f"{base}/deep/er/still", "deep", qos=1)
    mosquitto_pub(broker, version, f"{base}/not/matched", "no", qos=1)
    mosquitto_pub(broker, version, f"{base}/z", "last", qos=1)
    got = sub.expect(4)
    assert [(m.topic, m.payload, m.qos) for m in got] == [
        (f"{base}/x", b"q0", 0), (f"{base}/y", b"q1", 1), (f"{base}/deep/er/still", b"deep", 1), (f"{base}/z", b"last", 1)]


@both
def test_retained_message_reaches_later_subscriber_and_empty_payload_clears_it(broker, clients, mosquitto_clients, subs,
                                                                               version):
    topic = f"ret/{uniq()}"
    pub = clients(broker, version)
    pub.publish(topic, b"kept", qos=1, retain=True)
    pub.publish(topic, b"kept2", qos=1, retain=True)  # replaces the first
    late = clients(broker, version)
    late.subscribe(topic, 1)
    m = late.expect_topic(topic)
    assert (m.payload, m.retain) == (b"kept2", True)
    # mosquitto_sub sees the retained flag as well.
    cli = subs(broker, version, topic, count=1)
    (c,) = cli.expect(1)
    assert (c.payload, c.retain) == (b"kept2", True)
    # A live delivery to an existing subscriber is not flagged retained.
    pub.publish(topic, b"live", qos=1, retain=True)
    m = late.expect_topic(topic)
    assert (m.payload, m.retain) == (b"live", False)
    # An empty retained payload clears it: a new subscriber gets nothing retained.
    pub.publish(topic, b"", qos=1, retain=True)
    later = clients(broker, version)
    later.subscribe(topic, 1)
    pub.publish(topic, b"marker", qos=1)
    m = later.expect_topic(topic)
    assert (m.payload, m.retain) == (b"marker", False), "a cleared retained message was still delivered"


# == table topics ==============================================================================


def record_of(msg: Msg) -> dict:
    try:
        return msg.json()
    except ValueError:
        raise AssertionError(f"payload on {msg.topic} is not JSON: {msg.payload!r}")


@both
def test_rest_put_reaches_record_and_wildcard_subscribers(broker, clients, version):
    server = broker.require_microlith()
    sid = uniq("s")
    one = clients(broker, version)
    one.subscribe(f"Sensor/{sid}", 1)
    every = clients(broker, version)
    every.subscribe("Sensor/#", 1)
    plus = clients(broker, version)
    plus.subscribe("Sensor/+", 1)
    every.drain(), plus.drain()  # the current records of other tests, delivered as retained
    r = server.put(f"/Sensor/{sid}", json={"room": "kitchen", "temp": 21.5})
    assert r.status_code == 201, r
    for c in (one, every, plus):
        m = c.expect_topic(f"Sensor/{sid}")
        body = record_of(m)
        assert body["id"] == sid and body["room"] == "kitchen" and body["temp"] == 21.5, body
        assert not m.retain
    # A PATCH and a DELETE follow: the delete is an empty payload.
    assert server.patch(f"/Sensor/{sid}", json={"temp": 22.0}).status_code == 200
    assert record_of(one.expect_topic(f"Sensor/{sid}"))["temp"] == 22.0
    assert server.delete(f"/Sensor/{sid}").status_code in (200, 204)
    m = one.expect_topic(f"Sensor/{sid}")
    assert m.payload == b"", m


@both
def test_rest_change_reaches_mosquitto_sub(broker, mosquitto_clients, subs, version):
    server = broker.require_microlith()
    sid = uniq("cli")
    sub = subs(broker, version, f"Sensor/{sid}")
    assert server.put(f"/Sensor/{sid}", json={"room": "hall", "temp": 19.0}).status_code == 201
    (m,) = sub.expect(1)
    assert m.topic == f"Sensor/{sid}"
    body = json.loads(m.payload)
    assert body["id"] == sid and body["room"] == "hall" and body["temp"] == 19.0


@both
def test_subscribe_delivers_current_record_as_retained_first(broker, clients, mosquitto_clients, subs, version):
    server = broker.require_microlith()
    sid = uniq("cur")
    assert server.put(f"/Sensor/{sid}", json={"room": "attic", "temp": 12.0}).status_code == 201
    c = clients(broker, version)
    c.subscribe(f"Sensor/{sid}", 1)
    m = c.expect_topic(f"Sensor/{sid}")
    assert m.retain, "the current record must come flagged retained"
    assert record_of(m)["room"] == "attic"
    w = clients(broker, version)
    w.subscribe("Sensor/+", 1)
    m = w.expect_topic(f"Sensor/{sid}")
    assert m.retain and record_of(m)["temp"] == 12.0
    (cm,) = subs(broker, version, f"Sensor/{sid}", count=1).expect(1)
    assert cm.retain and json.loads(cm.payload)["id"] == sid
    # A record that does not exist has nothing retained: the first message is the live one.
    missing = uniq("none")
    e = clients(broker, version)
    e.subscribe(f"Sensor/{missing}", 1)
    server.put(f"/Sensor/{missing}", json={"room": "new"})
    m = e.expect_topic(f"Sensor/{missing}")
    assert not m.retain and record_of(m)["room"] == "new"


@both
def test_retained_publish_puts_and_empty_retained_deletes(broker, clients, version):
    server = broker.require_microlith()
    sid = uniq("pub")
    watcher = clients(broker, version)
    watcher.subscribe(f"Sensor/{sid}", 1)
    pub = clients(broker, version)
    rc = pub.publish(f"Sensor/{sid}", json.dumps({"room": "cellar", "temp": 9.5}), qos=1, retain=True)
    if version == "v5":
        assert not rc.is_failure, rc
    got = eventually(lambda: (r := server.get(f"/Sensor/{sid}")).status_code == 200 and r.json(), what="record stored")
    assert got["id"] == sid and got["room"] == "cellar" and got["temp"] == 9.5
    assert record_of(watcher.expect_topic(f"Sensor/{sid}"))["room"] == "cellar"
    rc = pub.publish(f"Sensor/{sid}", b"", qos=1, retain=True)
    if version == "v5":
        assert not rc.is_failure, rc
    eventually(lambda: server.get(f"/Sensor/{sid}").status_code == 404, what="record deleted")
    assert watcher.expect_topic(f"Sensor/{sid}").payload == b""


@both
def test_a_key_with_slashes_is_one_record_on_every_door(broker, clients, version):
    """One grammar for table targets: topic `Sensor/<room>/<id>` is the record whose key is `<room>/<id>`, which REST
    reads as `/Sensor/<room>/<id>` or `/Sensor/<room>%2F<id>`, and lists under the prefix `/Sensor/<room>/`."""
    server = broker.require_microlith()
    room = uniq("room")
    pub = clients(broker, version)
    for n, temp in (("a", 1.5), ("b", 2.5)):
        rc = pub.publish(f"Sensor/{room}/{n}", json.dumps({"temp": temp}), qos=1, retain=True)
        if version == "v5":
            assert not rc.is_failure, rc
    got = eventually(lambda: (r := server.get(f"/Sensor/{room}/b")).status_code == 200 and r.json(), what="record stored")
    assert got["id"] == f"{room}/b" and got["temp"] == 2.5
    assert server.get(f"/Sensor/{room}%2Fb").json() == got
    listed = server.get(f"/Sensor/{room}/")
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()] == [f"{room}/a", f"{room}/b"]
    # A REST write under the same key reaches the topic's subscribers.
    watcher = clients(broker, version)
    watcher.subscribe(f"Sensor/{room}/+", 1)
    watcher.expect_topic(f"Sensor/{room}/a")
    watcher.expect_topic(f"Sensor/{room}/b")
    assert server.put(f"/Sensor/{room}%2Fc", json={"temp": 7.0}).status_code == 201
    assert record_of(watcher.expect_topic(f"Sensor/{room}/c"))["temp"] == 7.0


def test_an_invalid_key_is_refused_on_mqtt_as_on_rest(broker, clients):
    server = broker.require_microlith()
    pub = clients(broker, "v5")
    rc = pub.publish("Sensor/bad\u0007key", json.dumps({"temp": 1}), qos=1, retain=True)
    assert rc.value == 0x90, f"PUBACK reason {rc} for an invalid key"
    rest = server.get("/Sensor/bad%07key")
    assert rest.status_code == 400
    assert "a key must not contain control characters" in rest.json()["detail"]


@both
def test_retained_publish_with_mosquitto_pub_creates_record(broker, mosquitto_clients, version):
    server = broker.require_microlith()
    sid = uniq("mp")
    mosquitto_pub(broker, version, f"Sensor/{sid}", json.dumps({"room": "porch", "temp": 3.25}), qos=1, retain=True)
    got = eventually(lambda: (r := server.get(f"/Sensor/{sid}")).status_code == 200 and r.json(), what="record stored")
    assert got["room"] == "porch" and got["temp"] == 3.25
    mosquitto_pub(broker, version, f"Sensor/{sid}", None, qos=1, retain=True)
    eventually(lambda: server.get(f"/Sensor/{sid}").status_code == 404, what="record deleted")


@both
def test_non_retained_publish_is_delivered_but_not_stored(broker, clients, version):
    server = broker.require_microlith()
    sid = uniq("msg")
    sub = clients(broker, version)
    sub.subscribe(f"Sensor/{sid}", 1)
    pub = clients(broker, version)
    pub.publish(f"Sensor/{sid}", json.dumps({"room": "transient"}), qos=1, retain=False)
    m = sub.expect_topic(f"Sensor/{sid}")
    assert json.loads(m.payload) == {"room": "transient"} and not m.retain
    pub.publish(f"Sensor/{sid}", b"not json at all", qos=1)
    assert sub.expect_topic(f"Sensor/{sid}").payload == b"not json at all"
    time.sleep(0.2)
    assert server.get(f"/Sensor/{sid}").status_code == 404


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", json.dumps({"temp": "hot"}).encode()],
                         ids=["malformed", "not-an-object", "schema-violation"])
def test_bad_retained_payload_gets_error_puback_in_v5_and_nothing_is_stored(broker, clients, payload):
    server = broker.require_microlith()
    sid = uniq("bad")
    pub = clients(broker, "v5")
    rc = pub.publish(f"Sensor/{sid}", payload, qos=1, retain=True)
    assert rc.value >= 0x80, f"PUBACK reason {rc} for a bad payload"
    assert rc.value in (0x80, 0x99), f"the doc names 0x99 (payload format invalid) or 0x80; got {rc}"
    assert server.get(f"/Sensor/{sid}").status_code == 404
    # The connection is still usable.
    pub.publish(f"Sensor/{sid}", json.dumps({"room": "ok"}), qos=1, retain=True)
    eventually(lambda: server.get(f"/Sensor/{sid}").status_code == 200, what="good record stored")


def test_bad_retained_payload_closes_a_v311_connection(broker, raw):
    server = broker.require_microlith()
    sid = uniq("bad311")
    c = raw(broker.port)
    c.connect(version=4)
    c.send(publish_packet(f"Sensor/{sid}", b"{oops", qos=1, retain=True, pid=7))
    seen = c.wait_closed()
    assert not any(p[0] == PUBACK for p in seen), f"3.1.1 has no failure PUBACK; got {seen}"
    assert server.get(f"/Sensor/{sid}").status_code == 404


def test_unexported_table_is_not_a_table_topic(broker, clients):
    server = broker.require_microlith()
    pub = clients(broker, "v5")
    rc = pub.publish("Hidden/h1", json.dumps({"secret": "x"}), qos=1, retain=True)
    assert rc is not None
    # Either refused or treated as a plain topic; never a write to the hidden table (not visible over REST).
    assert server.get("/Hidden/h1").status_code == 404


# == sessions, wills, keep-alive, takeover =====================================================


@both
def test_persistent_session_receives_everything_missed(broker, clients, version):
    cid = uniq("sess")
    plain = f"queue/{uniq()}"
    kw = dict(client_id=cid, clean=False, session_expiry=300 if version == "v5" else None)
    first = clients(broker, version, **kw)
    assert not first.session_present
    first.subscribe(plain, 1)
    prefix = uniq("ps")
    if broker.is_microlith:
        first.subscribe("Sensor/#", 1)
    first.disconnect()

    pub = clients(broker, version)
    for i in range(3):
        pub.publish(plain, f"missed-{i}".encode(), qos=1)
    ids = [f"{prefix}-{i}" for i in range(3)]
    if broker.is_microlith:
        for i, sid in enumerate(ids):
            assert broker.server.put(f"/Sensor/{sid}", json={"room": "r", "temp": float(i)}).status_code == 201
        assert broker.server.patch(f"/Sensor/{ids[0]}", json={"temp": 100.0}).status_code == 200
        assert broker.server.delete(f"/Sensor/{ids[1]}").status_code in (200, 204)

    again = clients(broker, version, **kw)
    assert again.session_present, "session_present must be set on reconnect with clean start false"
    # Gather everything (table changes are replayed from the change log, queued messages follow;
    # the order between the two kinds is not specified), then check each kind in order.
    table_topics = {f"Sensor/{sid}" for sid in ids} if broker.is_microlith else set()
    want_table = 5 if broker.is_microlith else 0  # put 0, put 1, put 2, patch 0, delete 1
    got_plain, got_table = [], []
    deadline = time.monotonic() + WAIT
    while (len(got_plain) < 3 or len(got_table) < want_table) and time.monotonic() < deadline:
        try:
            m = again.messages.get(timeout=0.1)
        except queue.Empty:
            continue
        if m.topic == plain:
            got_plain.append(m.payload)
        elif m.topic in table_topics:
            got_table.append((m.topic, m.payload))
    assert got_plain == [b"missed-0", b"missed-1", b"missed-2"], got_plain
    if broker.is_microlith:
        summary = [(t.split("/", 1)[1], json.loads(p)["temp"] if p else None) for t, p in got_table]
        assert summary == [(ids[0], 0.0), (ids[1], 1.0), (ids[2], 2.0), (ids[0], 100.0), (ids[1], None)], (
            f"missed table changes not replayed in commit order: {summary}")
    # Nothing twice.
    extra = [m for m in again.collect(0.3) if m.topic == plain or m.topic in table_topics]
    assert extra == [], f"delivered again: {extra}"
    # The session still works live.
    pub.publish(plain, b"live", qos=1)
    assert again.expect_topic(plain).payload == b"live"


@both
def test_clean_session_forgets_subscriptions(broker, clients, version):
    cid = uniq("clean")
    topic = f"forget/{uniq()}"
    first = clients(broker, version, client_id=cid, clean=True)
    first.subscribe(topic, 1)
    first.disconnect()
    pub = clients(broker, version)
    pub.publish(topic, b"while away", qos=1)
    again = clients(broker, version, client_id=cid, clean=True)
    assert not again.session_present
    assert [m for m in again.collect(QUIET) if m.topic == topic] == []


@both
def test_last_will_on_dropped_socket_but_not_on_clean_disconnect(broker, clients, raw, version):
    v = 5 if version == "v5" else 4
    will_topic = f"will/{uniq()}"
    watcher = clients(broker, version)
    watcher.subscribe(will_topic, 1)

    dropper = raw(broker.port)
    dropper.connect(version=v, will=(will_topic, b"gone", 1, False))
    dropper.sock.close()  # no DISCONNECT
    m = watcher.expect_topic(will_topic)
    assert m.payload == b"gone"

    polite = raw(broker.port)
    polite.connect(version=v, will=(will_topic, b"should not be sent", 1, False))
    polite.send(disconnect_packet(v))
    polite.wait_closed()
    pub = clients(broker, version)
    pub.publish(will_topic, b"marker", qos=1)
    assert watcher.expect_topic(will_topic).payload == b"marker", "a will was sent after a clean DISCONNECT"


@both
def test_last_will_from_paho_socket_close(broker, clients, version):
    will_topic = f"will/{uniq()}"
    watcher = clients(broker, version)
    watcher.subscribe(will_topic, 1)
    c = Paho(broker, version, connect=False)
    c.client.will_set(will_topic, b"paho-gone", qos=1)
    try:
        c.connect()
        c.client.loop_stop()
        c.client._sock.close()  # the socket dies without a DISCONNECT
        assert watcher.expect_topic(will_topic).payload == b"paho-gone"
    finally:
        c.client.loop_stop()


def test_keep_alive_disconnects_a_silent_client(broker, raw):
    c = raw(broker.port)
    c.connect(version=4, keepalive=1)
    start = time.monotonic()
    # mosquitto (checking the test itself) only looks every few seconds; microlith must keep 1.5 x.
    limit = 3.0 if broker.is_microlith else 7.0
    c.wait_closed(timeout=limit + 1)
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed <= limit, f"closed after {elapsed:.2f}s; 1.5 x keep-alive 1 s expected"


def test_keep_alive_pings_keep_a_client_connected(broker, raw):
    c = raw(broker.port)
    c.connect(version=5, keepalive=1)
    for _ in range(4):  # 2 s, longer than 1.5 x keep-alive
        time.sleep(0.5)
        c.send(packet(0xC0, b""))  # PINGREQ
        p = c.read_packet(2)
        assert p is not None and p[0] == 13, f"expected PINGRESP, got {p}"


@both
@pytest.mark.parametrize("clean", [True, False], ids=["clean", "persistent"])
def test_session_takeover_disconnects_the_first_connection(broker, clients, raw, version, clean):
    """MQTT: a second CONNECT with the client id of a live connection closes the first, whatever
    the clean-start flag of either."""
    v = 5 if version == "v5" else 4
    cid = uniq("take")
    first = raw(broker.port)
    first.connect(cid, version=v, clean=clean)
    second = clients(broker, version, client_id=cid, clean=clean, session_expiry=60 if not clean and v == 5 else None)
    seen = first.wait_closed()
    if v == 5 and seen:
        assert seen[-1][0] == DISCONNECT and seen[-1][2][:1] == b"\x8e", f"expected DISCONNECT 0x8E, got {seen}"
    topic = f"takeover/{uniq()}"
    second.subscribe(topic, 1)
    clients(broker, version).publish(topic, b"still here", qos=1)
    assert second.expect_topic(topic).payload == b"still here"
    assert not second.disconnected.is_set()


# == credentials ===============================================================================


@both
def test_credentials_are_checked(auth_broker, clients, raw, version):
    v = 5 if version == "v5" else 4
    refused = (4, 5) if v == 4 else (0x86, 0x87)
    for kwargs in ({"username": "alice", "password": "wrong"}, {"username": "mallory", "password": "secret"}, {}):
        c = raw(auth_broker.port)
        body = c.connect(version=v, **kwargs)[2]
        assert body[1] in refused, f"{kwargs}: CONNACK code {body[1]:#x}, expected one of {refused}"
        c.wait_closed()
    c = raw(auth_broker.port)
    body = c.connect(version=v, username="alice", password="secret")[2]
    assert body[1] == 0, f"right password refused with {body[1]:#x}"
    # And through paho, end to end.
    ok = clients(auth_broker, version, username="alice", password="secret")
    topic = f"auth/{uniq()}"
    ok.subscribe(topic, 1)
    ok.publish(topic, b"hi", qos=1)
    assert ok.expect_topic(topic).payload == b"hi"
    bad = clients(auth_broker, version, username="alice", password="nope", connect=False)
    bad.connect(expect_success=False)
    assert bad.connack is not None and bad.connack[1].is_failure, bad.connack


def test_credentials_with_mosquitto_clients(auth_broker, mosquitto_clients):
    topic = f"auth/{uniq()}"
    cmd = ["mosquitto_pub", "-h", auth_broker.host, "-p", str(auth_broker.port), "-t", topic, "-m", "x", "-q", "1"]
    assert subprocess.run(cmd + ["-u", "alice", "-P", "bad"], capture_output=True, timeout=WAIT + 5).returncode != 0
    assert subprocess.run(cmd, capture_output=True, timeout=WAIT + 5).returncode != 0
    r = subprocess.run(cmd + ["-u", "alice", "-P", "secret"], capture_output=True, text=True, timeout=WAIT + 5)
    assert r.returncode == 0, r.stderr


# == MQTT over WebSocket =======================================================================


@both
def test_mqtt_over_websocket(broker, clients, version):
    c = clients(broker, version, websockets=True)
    topic = f"ws/{uniq()}"
    c.subscribe(topic, 1)
    clients(broker, version).publish(topic, b"from tcp", qos=1)
    assert c.expect_topic(topic).payload == b"from tcp"
    if broker.is_microlith:
        sid = uniq("ws")
        c.subscribe(f"Sensor/{sid}", 1)
        assert broker.server.put(f"/Sensor/{sid}", json={"room": "ws", "temp": 1.0}).status_code == 201
        body = record_of(c.expect_topic(f"Sensor/{sid}"))
        assert body["id"] == sid and body["room"] == "ws"
        # And the other way: a retained publish over WebSocket is a write.
        c.publish(f"Sensor/{sid}", json.dumps({"room": "via-ws"}), qos=1, retain=True)
        eventually(lambda: broker.server.get(f"/Sensor/{sid}").json().get("room") == "via-ws", what="ws write stored")


def test_server_is_still_alive(broker):
    if broker.server is not None:
        assert broker.server.running, broker.server.logs()
        assert broker.server.get("/Sensor/").status_code == 200
