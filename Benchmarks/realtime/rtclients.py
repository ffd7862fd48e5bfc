"""Minimal asyncio clients for the realtime benchmark, and the worker processes that run them.

Written for low per-message cost, so that 2,000 subscribers spread over a few processes do not
decide the result: raw MQTT 3.1.1 (over TCP or over WebSocket) and a raw RFC 6455 client for
microlith's WebSocket event subscriptions. Each receipt is timestamped (CLOCK_MONOTONIC, which is
system-wide on Linux) at the top of `data_received`, before any parsing, and its payload kept;
JSON is decoded only after the run, so parsing one subscriber's message does not delay the
timestamp of the next one.
"""
import asyncio
import base64
import hashlib
import json
import os
import signal
import time
from array import array

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
monotonic_ns = time.monotonic_ns


# ---------------------------------------------------------------- MQTT 3.1.1 encoding

def remaining_length(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id, keepalive=0, clean=True):
    """MQTT 3.1.1 CONNECT; clean=False asks for a persistent session (clean session 0)."""
    body = mqtt_str("MQTT") + bytes([4, 0x02 if clean else 0]) + keepalive.to_bytes(2, "big") + mqtt_str(client_id)
    return b"\x10" + remaining_length(len(body)) + body


def subscribe_packet(pid, topic, qos):
    body = pid.to_bytes(2, "big") + mqtt_str(topic) + bytes([qos])
    return b"\x82" + remaining_length(len(body)) + body


def publish_packet(topic, payload, qos=0, retain=False, pid=0):
    body = mqtt_str(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    return bytes([0x30 | (qos << 1) | int(retain)]) + remaining_length(len(body)) + body


def split_packets(buf):
    """Complete MQTT packets at the start of `buf` as (first byte, body), and the leftover bytes."""
    packets = []
    i, n = 0, len(buf)
    while i + 2 <= n:
        j, length, mult = i + 1, 0, 1
        while True:
            if j >= n:
                return packets, buf[i:]
            b = buf[j]
            j += 1
            length += (b & 127) * mult
            mult <<= 7
            if b < 128:
                break
        if j + length > n:
            break
        packets.append((buf[i], buf[j:j + length]))
        i = j + length
    return packets, buf[i:]


def publish_payload(first, body):
    """(payload, packet id or None) of a PUBLISH body."""
    off = 2 + int.from_bytes(body[0:2], "big")
    if first & 0x06:
        return body[off + 2:], body[off:off + 2]
    return body[off:], None


# ---------------------------------------------------------------- WebSocket framing (client side)

def ws_frame(opcode, payload):
    """A masked client frame."""
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    key = os.urandom(4)
    if n:
        mask = (key * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
    return head + key + payload


def ws_handshake(host, port, path, subprotocol=None):
    key = base64.b64encode(os.urandom(16))
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key.decode()}", "Sec-WebSocket-Version: 13"]
    if subprotocol:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept


# ---------------------------------------------------------------- one subscriber connection

class Subscriber(asyncio.Protocol):
    """One subscriber. kind: "mqtt" (MQTT over TCP), "mqttws" (MQTT over WebSocket, subprotocol
    mqtt) or "ws" (microlith's WebSocket event subscription on `path`). Every received message
    after the subscription is live goes to `sink((cid, t_ns, payload))`."""

    def __init__(self, cid, kind, host, port, topic, path, qos, sink, ready):
        self.cid, self.kind, self.host, self.port = cid, kind, host, port
        self.topic, self.path, self.qos = topic, path, qos
        self.sink, self.ready = sink, ready
        self.ws = kind in ("ws", "mqttws")
        self.upgraded = not self.ws
        self.raw = b""       # bytes not yet framed (WebSocket) or not yet a whole MQTT packet
        self.mq = b""        # MQTT bytes carried over between WebSocket messages
        self.frag = None     # fragments of a WebSocket message
        self.live = False
        self.closed_early = False
        self.stopping = False
        self.tr = None

    # transport
    def connection_made(self, tr):
        self.tr = tr
        if self.ws:
            request, self.accept = ws_handshake(self.host, self.port, self.path,
                                                "mqtt" if self.kind == "mqttws" else None)
            tr.write(request)
        else:
            tr.write(connect_packet(f"sub-{os.getpid()}-{self.cid}"))

    def connection_lost(self, exc):
        if not self.stopping:
            self.closed_early = True
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"closed before subscribing ({exc})"))

    def fail(self, why):
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        self.tr.close()

    def send_mqtt(self, data):
        self.tr.write(ws_frame(2, data) if self.ws else data)

    def data_received(self, data):
        t = monotonic_ns()
        if not self.ws:
            self.mqtt_bytes(t, data)
            return
        buf = self.raw + data if self.raw else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.raw = buf
                return
            head = buf[:end].decode("latin-1")
            if not head.startswith("HTTP/1.1 101") or self.accept.decode() not in head:
                self.fail("WebSocket upgrade refused: " + head.split("\r\n")[0])
                return
            self.upgraded = True
            buf = buf[end + 4:]
            if self.kind == "mqttws":
                self.send_mqtt(connect_packet(f"sub-{os.getpid()}-{self.cid}"))
        # WebSocket frames (server frames are not masked)
        i, n = 0, len(buf)
        while n - i >= 2:
            b0, length = buf[i], buf[i + 1] & 127
            j = i + 2
            if length == 126:
                if n - j < 2:
                    break
                length, j = int.from_bytes(buf[j:j + 2], "big"), j + 2
            elif length == 127:
                if n - j < 8:
                    break
                length, j = int.from_bytes(buf[j:j + 8], "big"), j + 8
            if n - j < length:
                break
            payload = buf[j:j + length]
            i = j + length
            opcode = b0 & 0x0F
            if opcode >= 8:
                if opcode == 9:
                    self.tr.write(ws_frame(10, payload))
                elif opcode == 8:
                    self.tr.close()
                    return
                continue
            if not b0 & 0x80:
                self.frag = (self.frag or []) + [payload]
                continue
            if self.frag is not None:
                payload = b"".join(self.frag + [payload])
                self.frag = None
            if self.kind == "mqttws":
                self.mqtt_bytes(t, payload)
            elif self.live:
                self.sink((self.cid, t, payload))
            else:
                event = json.loads(payload)
                if event.get("type") == "subscribed":
                    self.live = True
                    self.ready.set_result(True)
        self.raw = buf[i:]

    def mqtt_bytes(self, t, data):
        buf = self.mq + data if self.mq else data
        packets, self.mq = split_packets(buf)
        for first, body in packets:
            kind = first >> 4
            if kind == 3:
                payload, pid = publish_payload(first, body)
                if self.live:
                    self.sink((self.cid, t, payload))
                if pid is not None:
                    self.send_mqtt(b"\x40\x02" + pid)
            elif kind == 2:
                if len(body) < 2 or body[1] != 0:
                    self.fail(f"CONNACK refused: {body!r}")
                    return
                self.send_mqtt(subscribe_packet(1, self.topic, self.qos))
            elif kind == 9:
                if body[2:3] == b"\x80":
                    self.fail("SUBACK refused")
                    return
                self.live = True
                self.ready.set_result(True)


# ---------------------------------------------------------------- worker process helpers

def worker_setup():
    # The parent ends workers with SIGTERM and handles Ctrl-C itself; a forked worker must not
    # inherit its handlers (they would turn SIGTERM into a KeyboardInterrupt traceback here).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except Exception:
        pass
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


async def pipe_recv(conn):
    return await asyncio.get_running_loop().run_in_executor(None, conn.recv)


def fanout_worker(conn, cfg):
    """Process body: opens cfg["subs"] = [(cid, kind, port, topic, path)] subscribers, reports
    ("ready", ok, errors), waits for "stop", then sends the analysed receipts."""
    loop = worker_setup()
    try:
        conn.send(loop.run_until_complete(_fanout(conn, cfg)))
    except BaseException as e:  # report, do not hang the parent
        conn.send({"error": repr(e)})
    finally:
        loop.close()


async def _fanout(conn, cfg):
    loop = asyncio.get_running_loop()
    received = {kind: [] for kind in ("mqtt", "mqttws", "ws")}
    subs, errors = [], []
    gate = asyncio.Semaphore(cfg.get("connect_concurrency", 50))

    async def open_one(cid, kind, port, topic, path):
        async with gate:
            for attempt in range(3):
                ready = loop.create_future()
                try:
                    _, sub = await asyncio.wait_for(loop.create_connection(
                        lambda: Subscriber(cid, kind, cfg["host"], port, topic, path, 0, received[kind].append, ready),
                        cfg["host"], port), 20)
                    await asyncio.wait_for(ready, 30)
                    subs.append(sub)
                    return
                except Exception as e:
                    if not ready.done():
                        ready.cancel()
                    if attempt == 2:
                        errors.append(f"{kind} {cid}: {e!r}")
                    await asyncio.sleep(0.2 * (attempt + 1))

    await asyncio.gather(*(open_one(*s) for s in cfg["subs"]))
    conn.send(("ready", len(subs), errors[:5], len(errors)))
    while True:
        msg = await pipe_recv(conn)
        if msg == "stop":
            break
    for s in subs:
        s.stopping = True
        s.tr.close()
    await asyncio.sleep(0)
    result = {}
    for kind, rows in received.items():
        mine = [s for s in subs if s.kind == kind]
        if mine:
            result[kind] = analyse(rows, cfg["writes"], sum(1 for s in mine if s.closed_early), len(mine), cfg.get("run"))
    return result


def analyse(received, writes, closed_early, subscribers, run=None):
    """Latencies (ms) of the first receipt of each measured write (n in 0..writes-1) of fan-out
    `run` per subscriber; an earlier run's record (the retained one a subscriber gets first) counts
    as other."""
    latencies = array("d")
    per_write_max = [0.0] * writes
    last_receipt = 0
    seen = set()
    dup = overflow = other = bad = 0
    for cid, t, payload in received:
        try:
            obj = json.loads(payload)
        except ValueError:
            bad += 1
            continue
        if not isinstance(obj, dict):
            bad += 1
            continue
        if "type" in obj:                      # a microlith WebSocket event
            kind = obj["type"]
            if kind == "overflow":
                overflow += 1
            if kind != "put":
                other += 1
                continue
            obj = obj.get("value") or {}
        n = obj.get("n")
        if not isinstance(n, int) or not 0 <= n < writes or (run is not None and obj.get("r") != run):
            other += 1
            continue
        key = cid * writes + n
        if key in seen:
            dup += 1
            continue
        seen.add(key)
        ms = (t - obj["t"]) / 1e6
        latencies.append(ms)
        if ms > per_write_max[n]:
            per_write_max[n] = ms
        if t > last_receipt:
            last_receipt = t
    return {"latencies": latencies, "per_write_max": per_write_max, "last_receipt_ns": last_receipt,
            "duplicates": dup, "overflow": overflow, "other": other, "bad": bad,
            "closed_early": closed_early, "subscribers": subscribers}


# ---------------------------------------------------------------- throughput: one publisher + one subscriber

class CountingSubscriber(asyncio.Protocol):
    """MQTT over TCP; counts PUBLISH packets (acknowledging QoS 1 ones with PUBACK, QoS 2 ones with
    PUBREC and their PUBREL with PUBCOMP) with the times of the first and last. `clean=False`: a
    persistent session."""

    def __init__(self, name, topic, qos, ready, clean=True):
        self.name, self.topic, self.qos, self.ready, self.clean = name, topic, qos, ready, clean
        self.buf = b""
        self.count = 0
        self.first = self.last = 0
        self.live = False

    def connection_made(self, tr):
        self.tr = tr
        tr.write(connect_packet(self.name, clean=self.clean))

    def connection_lost(self, exc):
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"subscriber closed ({exc})"))

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        i, n = 0, len(buf)
        count = 0
        acks = []
        while i + 2 <= n:
            j, length, mult = i + 1, 0, 1
            while j < n:
                b = buf[j]
                j += 1
                length += (b & 127) * mult
                mult <<= 7
                if b < 128:
                    break
            else:
                break
            if j + length > n:
                break
            first = buf[i]
            if first >> 4 == 3:
                count += 1
                if first & 0x06:
                    off = j + 2 + int.from_bytes(buf[j:j + 2], "big")
                    acks.append((b"\x50\x02" if first & 0x04 else b"\x40\x02") + buf[off:off + 2])
            elif first >> 4 == 6:  # PUBREL -> PUBCOMP
                acks.append(b"\x70\x02" + buf[j:j + 2])
            elif first >> 4 == 2:
                self.tr.write(subscribe_packet(1, self.topic, self.qos))
            elif first >> 4 == 9:
                self.live = True
                self.ready.set_result(True)
            i = j + length
        self.buf = buf[i:]
        if count:
            t = monotonic_ns()
            if not self.count:
                self.first = t
            self.count += count
            self.last = t
        if acks:
            self.tr.write(b"".join(acks))


class Publisher(asyncio.Protocol):
    """MQTT over TCP publisher: QoS 0 as fast as the socket takes it, or QoS 1 or 2 with a window of
    `window` unacknowledged messages (QoS 2: a message is done at PUBCOMP; PUBREC is answered with
    PUBREL)."""

    def __init__(self, name, topic, qos, payload, window, ready):
        self.name, self.topic, self.qos, self.window, self.ready = name, topic, qos, window, ready
        self.payload = payload
        body_len = 2 + len(topic.encode()) + (2 if qos else 0) + len(payload)
        self.head = bytes([0x30 | (qos << 1)]) + remaining_length(body_len) + mqtt_str(topic)
        self.sent = self.acked = self.inflight = 0
        self.pid = 0
        self.buf = b""
        self.stopped = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.drained = None

    def connection_made(self, tr):
        self.tr = tr
        tr.set_write_buffer_limits(high=256 * 1024)
        tr.write(connect_packet(self.name))

    def connection_lost(self, exc):
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"publisher closed ({exc})"))
        self.stopped = True
        self.writable.set()
        if self.drained and not self.drained.done():
            self.drained.set_result(False)

    def pause_writing(self):
        self.writable.clear()

    def resume_writing(self):
        self.writable.set()

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        acks = 0
        releases = []
        i, n = 0, len(buf)
        while i + 2 <= n:
            length = buf[i + 1]  # PUBACK, PUBREC, PUBCOMP and CONNACK bodies are 2 bytes
            if i + 2 + length > n:
                break
            first = buf[i] >> 4
            if first == 4 or first == 7:
                acks += 1
            elif first == 5:
                releases.append(b"\x62\x02" + buf[i + 2:i + 4])
            elif first == 2:
                if buf[i + 3] != 0:
                    self.ready.set_exception(ConnectionError("CONNACK refused"))
                else:
                    self.ready.set_result(True)
            i += 2 + length
        self.buf = buf[i:]
        if releases:
            self.tr.write(b"".join(releases))
        if acks:
            self.acked += acks
            self.inflight -= acks
            if not self.stopped:
                self.send_qos1(acks)
            elif self.inflight <= 0 and self.drained and not self.drained.done():
                self.drained.set_result(True)

    def send_qos1(self, k):
        out = []
        head, payload = self.head, self.payload
        pid = self.pid
        for _ in range(k):
            pid = pid % 65535 + 1
            out.append(head + pid.to_bytes(2, "big") + payload)
        self.pid = pid
        self.sent += k
        self.inflight += k
        self.tr.write(b"".join(out))

    async def run(self, end_ns):
        if self.qos:
            self.send_qos1(self.window)
            while monotonic_ns() < end_ns and not self.stopped:
                await asyncio.sleep(0.05)
            self.stopped = True
            if self.inflight > 0:
                self.drained = asyncio.get_running_loop().create_future()
                try:
                    await asyncio.wait_for(self.drained, 10)
                except asyncio.TimeoutError:
                    pass
            return
        batch_n = 64
        batch = (self.head + self.payload) * batch_n
        while monotonic_ns() < end_ns and not self.stopped:
            self.tr.write(batch)
            self.sent += batch_n
            if not self.writable.is_set():
                await self.writable.wait()
            else:
                await asyncio.sleep(0)
        self.acked = self.sent


def throughput_worker(conn, cfg):
    """Process body: cfg["pairs"] = [(index, topic)]; one publisher and one subscriber per topic."""
    loop = worker_setup()
    try:
        conn.send(loop.run_until_complete(_throughput(conn, cfg)))
    except BaseException as e:
        conn.send({"error": repr(e)})
    finally:
        loop.close()


async def _throughput(conn, cfg):
    loop = asyncio.get_running_loop()
    host, port, qos = cfg["host"], cfg["port"], cfg["qos"]
    payload = cfg["payload"]
    clean = not cfg.get("persistent", False)
    subs, pubs = [], []
    for index, topic in cfg["pairs"]:
        ready = loop.create_future()
        _, sub = await loop.create_connection(
            lambda: CountingSubscriber(f"tsub-{os.getpid()}-{index}", topic, qos, ready, clean=clean), host, port)
        await asyncio.wait_for(ready, 20)
        subs.append(sub)
        ready = loop.create_future()
        _, pub = await loop.create_connection(lambda: Publisher(f"tpub-{os.getpid()}-{index}", topic, qos, payload,
                                                                cfg["window"], ready), host, port)
        await asyncio.wait_for(ready, 20)
        pubs.append(pub)
    conn.send("ready")
    start_ns, end_ns = await pipe_recv(conn)
    window = {}

    async def snapshot():
        await asyncio.sleep(max(0, (end_ns - monotonic_ns()) / 1e9))
        window["received"] = sum(s.count for s in subs)
        window["published"] = sum(p.acked if qos else p.sent for p in pubs)

    snap = asyncio.ensure_future(snapshot())
    await asyncio.sleep(max(0, (start_ns - monotonic_ns()) / 1e9))
    await asyncio.gather(*(p.run(end_ns) for p in pubs))
    await snap
    # Drain: wait until every subscriber is quiet for 0.5 s (at most 10 s after the end).
    published = sum(p.acked for p in pubs)
    deadline = monotonic_ns() + 10_000_000_000
    while monotonic_ns() < deadline:
        before = sum(s.count for s in subs)
        await asyncio.sleep(0.5)
        after = sum(s.count for s in subs)
        if after == before and after >= published:
            break
        if after == before and monotonic_ns() - max(s.last for s in subs) > 1_000_000_000:
            break
    result = {"sent": sum(p.sent for p in pubs), "published": published,
              "received_in_window": window["received"], "published_in_window": window["published"],
              "received": sum(s.count for s in subs),
              "last_receipt_ns": max(s.last for s in subs), "publisher_closed": sum(1 for p in pubs if p.tr.is_closing())}
    for t in subs + pubs:
        t.tr.close()
    return result
