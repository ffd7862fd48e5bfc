"""MQTT helpers shared by the MQTT suites (test_mqtt.py, test_mqtt_fuzz.py): brokers (microlith or a
local mosquitto), paho clients, raw MQTT packets and sockets, mosquitto_pub / mosquitto_sub
subprocesses. Their fixtures are in conftest.py."""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass

import pytest

from microlith_e2e import MicrolithServer, free_port

try:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    from paho.mqtt.subscribeoptions import SubscribeOptions
except ImportError as e:  # a missing client is a failure of the set-up, never a skip
    raise ImportError("paho-mqtt is needed: pip install -r e2e/requirements.txt") from e

#: Every wait in the MQTT suites is bounded by this (seconds); a hung broker fails the test quickly.
WAIT = 5.0
#: How long to watch for a message that must NOT arrive.
QUIET = 0.7

BROKER_KIND = os.environ.get("MICROLITH_E2E_MQTT_BROKER", "microlith")

SCHEMA = """
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

VERSIONS = {"v311": mqtt.MQTTv311, "v5": mqtt.MQTTv5}
CLI_VERSION = {"v311": "311", "v5": "5"}


def uniq(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- brokers -----------------------------------------------------------------------------------


@dataclass
class Broker:
    kind: str
    host: str
    port: int
    ws_port: int
    ws_path: str
    server: MicrolithServer | None = None

    @property
    def is_microlith(self) -> bool:
        return self.kind == "microlith"

    def require_microlith(self):
        if not self.is_microlith:
            pytest.skip("table topics need microlith (running against MICROLITH_E2E_MQTT_BROKER=mosquitto)")
        return self.server


def wait_for_port(port: int, timeout: float = WAIT, what: str = "MQTT broker"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not accepting connections on 127.0.0.1:{port} after {timeout}s")
            time.sleep(0.05)


def microlith_broker(factory, yaml: str | None = None, env: dict | None = None) -> Broker:
    app = factory.app(SCHEMA, yaml=yaml)
    server = factory.server(app, env=env)
    port = server.mqtt_port
    assert port, (
        "the server has no MQTT port: the binary does not know --mqtt-port (MQTT broker not built in?)\n" + server.logs()
    )
    wait_for_port(port)
    return Broker("microlith", "127.0.0.1", port, server.port, "/mqtt", server)


class Mosquitto:
    """A scratch mosquitto for checking the plain-MQTT tests themselves."""

    def __init__(self, directory, users: dict | None = None):
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(exe):
            pytest.fail("MICROLITH_E2E_MQTT_BROKER=mosquitto but no mosquitto binary (apt-get install mosquitto)")
        self.port, self.ws_port = free_port(), free_port()
        lines = [f"listener {self.port} 127.0.0.1", f"listener {self.ws_port} 127.0.0.1", "protocol websockets",
                 "persistence false", "max_packet_size 1048576", "user root"]  # (root only: keep reading files in pytest's 0700 folders)
        if users:
            pw = os.path.join(directory, "passwd")
            open(pw, "w").close()
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", pw, user, password], check=True, timeout=10)
            lines += [f"password_file {pw}", "allow_anonymous false"]
        else:
            lines += ["allow_anonymous true"]
        conf = os.path.join(directory, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.log = os.path.join(directory, "mosquitto.log")
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([exe, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)
        wait_for_port(self.ws_port)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def make_broker(factory, tmp_dir, users: dict | None = None):
    if BROKER_KIND == "mosquitto":
        m = Mosquitto(str(tmp_dir), users)
        return Broker("mosquitto", "127.0.0.1", m.port, m.ws_port, "/mqtt"), m.stop
    if not users:
        return microlith_broker(factory), (lambda: None)
    # MQTT clients sign in as the app's users; one is made at first start, the way an operator makes the
    # first super user. Clients without credentials are refused, as mosquitto's allow_anonymous false does.
    assert len(users) == 1, "microlith makes one user from the environment"
    (name, password), = users.items()
    env = {"MICROLITH_ADMIN_USER": name, "MICROLITH_ADMIN_PASSWORD": password}
    return microlith_broker(factory, "mqtt:\n  allowAnonymous: false\n", env), (lambda: None)


# -- paho ------------------------------------------------------------------------------------


@dataclass
class Msg:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    # MQTT 5 PUBLISH properties as paho decoded them (None for MQTT 3.1.1 messages)
    properties: object = None

    def json(self):
        return json.loads(self.payload)


class Paho:
    """A paho client on its own network thread, with every callback turned into something to wait on."""

    def __init__(self, broker: Broker, version: str = "v5", *, client_id: str | None = None, clean: bool = True,
                 session_expiry: int | None = None, username: str | None = None, password: str | None = None,
                 websockets: bool = False, connect: bool = True):
        self.version = version
        self.protocol = VERSIONS[version]
        self.client_id = client_id or uniq("paho")
        kwargs = {}
        if self.protocol != mqtt.MQTTv5:
            kwargs["clean_session"] = clean
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=self.protocol,
                                  transport="websockets" if websockets else "tcp", reconnect_on_failure=False, **kwargs)
        self.client.connect_timeout = WAIT
        if websockets:
            self.client.ws_set_options(path=broker.ws_path)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.messages: "queue.Queue[Msg]" = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack = None  # (session_present, reason code)
        self.disconnect_reason = None
        self._acks: dict = {}
        self._lock = threading.Lock()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.clean = clean
        self.session_expiry = session_expiry
        self.broker = broker
        self.websockets = websockets
        if connect:
            self.connect()

    # callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = (bool(flags.session_present), reason_code)
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.disconnect_reason = reason_code
        self.disconnected.set()

    def _on_message(self, client, userdata, m):
        props = getattr(m, "properties", None) if self.protocol == mqtt.MQTTv5 else None
        self.messages.put(Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), props))

    def _ack(self, mid, value):
        with self._lock:
            ev = self._acks.setdefault(mid, [threading.Event(), None])
            ev[1] = value
            ev[0].set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self._ack(("sub", mid), list(reason_codes))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        self._ack(("pub", mid), reason_code)

    def _wait_ack(self, key, what):
        with self._lock:
            ev = self._acks.setdefault(key, [threading.Event(), None])
        assert ev[0].wait(WAIT), f"{what}: no acknowledgement within {WAIT}s"
        return ev[1]

    # actions
    def connect(self, expect_success: bool = True):
        kwargs = {}
        if self.protocol == mqtt.MQTTv5:
            kwargs["clean_start"] = self.clean
            if self.session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry
                kwargs["properties"] = props
        port = self.broker.ws_port if self.websockets else self.broker.port
        self.connected.clear()
        self.disconnected.clear()
        self.client.connect(self.broker.host, port, keepalive=30, **kwargs)
        self.client.loop_start()
        assert self.connected.wait(WAIT) or not expect_success, f"no CONNACK within {WAIT}s ({self.version})"
        if expect_success:
            session_present, rc = self.connack
            assert not rc.is_failure, f"CONNECT refused: {rc}"
        return self

    @property
    def session_present(self) -> bool:
        return self.connack[0]

    def subscribe(self, topic: str, qos: int = 1, *, no_local: bool = False, identifier: int | None = None) -> list:
        """SUBSCRIBE; MQTT 5 options: `no_local`, a subscription `identifier`."""
        properties = None
        if identifier is not None:
            properties = Properties(PacketTypes.SUBSCRIBE)
            properties.SubscriptionIdentifier = identifier
        if no_local or properties is not None:
            result, mid = self.client.subscribe(topic, options=SubscribeOptions(qos=qos, noLocal=no_local), properties=properties)
        else:
            result, mid = self.client.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS, result
        granted = self._wait_ack(("sub", mid), f"SUBSCRIBE {topic}")
        for rc in granted:
            assert not rc.is_failure, f"SUBSCRIBE {topic} refused: {rc}"
        return [rc.value for rc in granted]

    def publish(self, topic: str, payload=b"", qos: int = 1, retain: bool = False, properties=None):
        """Publishes (with MQTT 5 `properties`, a paho Properties of PUBLISH) and waits for the
        acknowledgement (QoS 1/2); returns the PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        if qos == 0:
            return None
        return self._wait_ack(("pub", info.mid), f"PUBLISH {topic} qos {qos}")

    def expect(self, predicate=lambda m: True, timeout: float = WAIT, what: str = "a message") -> Msg:
        """The next message matching `predicate` (others are dropped)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.client_id}: no {what} within {timeout}s; got {seen[:20]}")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if predicate(m):
                return m
            seen.append(m)

    def expect_topic(self, topic: str, timeout: float = WAIT) -> Msg:
        return self.expect(lambda m: m.topic == topic, timeout, f"message on {topic}")

    def until_topic(self, topic: str, timeout: float = WAIT) -> list:
        """Every message up to and including the first on `topic`."""
        out, deadline = [], time.monotonic() + timeout
        while not out or out[-1].topic != topic:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.client_id}: nothing on {topic} within {timeout}s; got {out[:20]}")
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                pass
        return out

    def collect(self, duration: float) -> list:
        out, deadline = [], time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.messages.get(timeout=left))
            except queue.Empty:
                break
        return out

    def drain(self):
        while True:
            try:
                self.messages.get_nowait()
            except queue.Empty:
                return

    def disconnect(self):
        self.client.disconnect()
        self.disconnected.wait(WAIT)
        self.client.loop_stop()

    def close(self):
        try:
            self.client.disconnect()
        except Exception:
            pass
        self.client.loop_stop()


# -- raw MQTT ----------------------------------------------------------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(s) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + varint(len(body)) + body


def connect_packet(client_id: str, version: int = 4, *, keepalive: int = 30, clean: bool = True, will=None,
                   username: str | None = None, password: str | None = None, properties: bytes = b"") -> bytes:
    """CONNECT for MQTT 3.1.1 (version 4) or 5; `will` is (topic, payload, qos, retain)."""
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    vh = mstr("MQTT") + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        vh += varint(len(properties)) + properties
    payload = mstr(client_id)
    if will:
        if version == 5:
            payload += varint(0)
        payload += mstr(will[0]) + mstr(will[1])
    if username is not None:
        payload += mstr(username)
    if password is not None:
        payload += mstr(password)
    return packet(0x10, vh + payload)


def publish_packet(topic: str, payload: bytes = b"", *, qos: int = 0, retain: bool = False, pid: int = 1,
                   version: int = 4, dup: bool = False) -> bytes:
    first = 0x30 | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = mstr(topic)
    if qos:
        body += struct.pack("!H", pid)
    if version == 5:
        body += varint(0)
    return packet(first, body + payload)


def subscribe_packet(pid: int, filters, version: int = 4) -> bytes:
    body = struct.pack("!H", pid) + (varint(0) if version == 5 else b"")
    for topic, qos in filters:
        body += mstr(topic) + bytes([qos])
    return packet(0x82, body)


def disconnect_packet(version: int = 4, reason: int = 0) -> bytes:
    return packet(0xE0, bytes([reason, 0]) if version == 5 else b"")


CONNACK, PUBLISH, PUBACK, SUBACK, DISCONNECT = 2, 3, 4, 9, 14


class RawClient:
    """One TCP connection speaking MQTT byte by byte."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = WAIT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self, n: int, deadline: float) -> bool:
        while len(self.buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"nothing more from the broker within the time allowed (have {self.buffer!r})")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def read_packet(self, timeout: float = WAIT):
        """(type, flags, body), or None when the broker closed the connection."""
        deadline = time.monotonic() + timeout
        if not self._fill(2, deadline):
            return None
        length, mult, i = 0, 1, 1
        while True:
            if not self._fill(i + 1, deadline):
                return None
            b = self.buffer[i]
            length += (b & 0x7F) * mult
            mult *= 128
            i += 1
            if not b & 0x80:
                break
        if not self._fill(i + length, deadline):
            return None
        first, body = self.buffer[0], self.buffer[i:i + length]
        self.buffer = self.buffer[i + length:]
        return first >> 4, first & 0x0F, body

    def connect(self, client_id: str | None = None, version: int = 4, **kwargs):
        self.send(connect_packet(client_id or uniq("raw"), version, **kwargs))
        p = self.read_packet()
        assert p is not None, "connection closed instead of CONNACK"
        assert p[0] == CONNACK, p
        return p  # body: [session present, return/reason code, (v5 properties)]

    def wait_closed(self, timeout: float = WAIT) -> list:
        """Reads until the broker closes the connection; returns the packets seen before. Fails on timeout."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                p = self.read_packet(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"connection still open after {timeout}s (packets: {seen})")
            except OSError:
                return seen
            if p is None:
                return seen
            seen.append(p)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# -- mosquitto_sub / mosquitto_pub -------------------------------------------------------------


class MosquittoSub:
    """`mosquitto_sub -d -F 'MSG>%r|%q|%t|%p'` as a subprocess (line-buffered through stdbuf); returns
    once its SUBACK arrived."""

    def __init__(self, broker: Broker, version: str, *topics: str, qos: int = 1, count: int | None = None,
                 extra: tuple = ()):
        cmd = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", CLI_VERSION[version], "-d",
               "-q", str(qos), "-F", "MSG>%r|%q|%t|%p", "-W", str(int(WAIT) + 3), *extra]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", *cmd]
        if count:
            cmd += ["-C", str(count)]
        for t in topics:
            cmd += ["-t", t]
        self.lines: "queue.Queue[str | None]" = queue.Queue()
        self.subacked = threading.Event()
        self.debug: list[str] = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        assert self.subacked.wait(WAIT), f"mosquitto_sub got no SUBACK: {self.debug}"

    def _pump(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("MSG>"):
                self.lines.put(line[4:])
            else:
                self.debug.append(line)
                if "received SUBACK" in line:
                    self.subacked.set()
        self.lines.put(None)

    def expect(self, n: int = 1, timeout: float = WAIT) -> list[Msg]:
        out, deadline = [], time.monotonic() + timeout
        while len(out) < n:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"mosquitto_sub: {len(out)}/{n} messages within {timeout}s: {out}; debug {self.debug[-10:]}")
            if line is None:
                raise AssertionError(f"mosquitto_sub exited after {out}; debug {self.debug[-10:]}")
            r, q, topic, payload = line.split("|", 3)
            out.append(Msg(topic, payload.encode(), int(q), r == "1"))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def mosquitto_pub(broker: Broker, version: str, topic: str, message: str | None, *, qos: int = 1,
                  retain: bool = False, extra: tuple = ()) -> subprocess.CompletedProcess:
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", CLI_VERSION[version], "-t", topic,
           "-q", str(qos), *extra]
    cmd += ["-n"] if message is None else ["-m", message]
    if retain:
        cmd.append("-r")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT + 5)
    assert r.returncode == 0, f"{' '.join(cmd)} -> {r.returncode}: {r.stdout} {r.stderr}"
    return r


def eventually(check, timeout: float = WAIT, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")


both = pytest.mark.parametrize("version", ["v311", "v5"])
