"""Replication between microlith nodes through a real nats-server's JetStream: three
`microlith serve` processes write at once, NATS and a node are killed and restarted, and at the
end every node holds the same records and every acknowledged write. Each test prints writes
acknowledged, found and lost, and how long the nodes took to converge."""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest

from microlith_e2e import BINARY, MicrolithServer, clean_environment, faketime_command, http_request, stop_children
from nats_helpers import NatsServer, TcpProxy, nats_binary, nats_request

pytestmark = pytest.mark.skipif(nats_binary() is None, reason="nats-server is not installed (scripts/test installs it)")

SCHEMA = """
type Rec @table @export {
    id: ID @primaryKey
    node: String @indexed
    n: Int
    note: String
}
"""

NODES = 3
OWN_KEYS = 8
SHARED_KEYS = 4


class Writer:
    """Writes to one node: its own keys (so the expected final state is known: the last
    acknowledged write) and keys every node writes (convergence only)."""

    def __init__(self, server, name: str, seed: int):
        self.server = server
        self.name = name
        self.random = random.Random(seed)
        self.model: dict[str, dict | None] = {}
        self.acknowledged = 0
        self.uncertain: set[str] = set()

    def step(self, i: int) -> None:
        if self.random.random() < 0.25:
            key = f"shared-{self.random.randrange(SHARED_KEYS)}"
            own = False
        else:
            key = f"{self.name}-{self.random.randrange(OWN_KEYS)}"
            own = True
        choice = self.random.random()
        try:
            if choice < 0.55 or (own and self.model.get(key) is None and choice < 0.8):
                body = {"id": key, "node": self.name, "n": i}
                r = self.server.put(f"/Rec/{key}", json=body)
                assert r.status_code in (200, 201, 204), r.text
                if own:
                    self.model[key] = body
            elif choice < 0.8:
                r = self.server.patch(f"/Rec/{key}", json={"note": f"{self.name} {i}"})
                assert r.status_code in (200, 204, 404), r.text
                if own and r.status_code != 404:
                    self.model[key] = {**self.model[key], "note": f"{self.name} {i}"}
            else:
                r = self.server.delete(f"/Rec/{key}")
                assert r.status_code in (200, 204, 404), r.text
                if own:
                    self.model[key] = None
            self.acknowledged += 1
        except (OSError, ConnectionError):
            if own:
                self.uncertain.add(key)

    def run(self, steps: int, start: int = 0) -> None:
        for i in range(start, start + steps):
            self.step(i)


def dump(server) -> dict:
    return {r["id"]: {k: v for k, v in r.items()} for r in server.query("Rec")}


def converge(servers, timeout: float = 60) -> float:
    """Waits until every node answers the same records; returns the seconds it took."""
    started = time.monotonic()
    while True:
        dumps = [dump(s) for s in servers]
        if all(d == dumps[0] for d in dumps[1:]):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            differing = {k for d in dumps for k in d if any(e.get(k) != d.get(k) for e in dumps)}
            raise AssertionError(f"nodes still differ after {timeout} s on {sorted(differing)[:10]}")
        time.sleep(0.2)


def converge_and_report(servers, writers, what: str, timeout: float = 60, since: str = "") -> None:
    """Waits for convergence, checks every acknowledged write on every node, prints the figures
    (`what`; `since` says from when convergence is timed) and fails on a lost write."""
    seconds = converge(servers, timeout=timeout)
    acknowledged, found, lost = check(servers, writers)
    print(f"\n{what}: acknowledged {acknowledged}, found {found}, lost {lost}, converged {seconds:.2f} s{since}")
    assert lost == 0


def check(servers, writers) -> tuple[int, int, int]:
    """acknowledged, found, lost: every node must hold each own key's last acknowledged state."""
    acknowledged = sum(w.acknowledged for w in writers)
    found = lost = 0
    for server in servers:
        records = dump(server)
        for w in writers:
            for key, expected in w.model.items():
                if key in w.uncertain:
                    continue
                got = records.get(key)
                if got is not None:
                    got = {k: v for k, v in got.items() if k in ("id", "node", "n", "note")}
                if got == expected:
                    found += 1
                else:
                    lost += 1
                    print(f"LOST on node {server.env.get('MICROLITH_REPLICATION_NODE')}: {key} expected {expected}, got {got}")
    return acknowledged, found, lost


def start_nodes(factory, tmp_path, nats: NatsServer, count: int = NODES, env: dict | None = None):
    app = factory.app(SCHEMA)
    servers = []
    extra = env or {}
    for i in range(1, count + 1):
        env = {"MICROLITH_REPLICATION_NATS": nats.url, "MICROLITH_REPLICATION_NODE": f"node-{i}", **extra}
        servers.append(factory.server(app, tmp_path / f"node-{i}", env=env, extra_args=("--no-mqtt",)))
    return servers


def test_three_nodes_converge_with_every_acknowledged_write(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats)
        writers = [Writer(s, f"node-{i + 1}", seed=i) for i, s in enumerate(servers)]
        threads = [threading.Thread(target=w.run, args=(120,)) for w in writers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        converge_and_report(servers, writers, "replication, 3 nodes writing at once")
        # What a node wrote is visible on the others with its writer's name.
        assert any(r["node"] == "node-1" for r in servers[2].query("Rec"))
    finally:
        nats.kill()


def test_writes_survive_nats_and_a_node_being_killed(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats)
        writers = [Writer(s, f"node-{i + 1}", seed=10 + i) for i, s in enumerate(servers)]
        for w in writers:
            w.run(20)

        # NATS dies: every node keeps taking writes; they are published when it is back.
        nats.kill()
        for w in writers:
            w.run(20, start=100)
        nats.start()

        # A node dies mid-stream (SIGKILL) while the others keep writing; it comes back.
        victim = servers[2]
        victim.kill()
        for w in writers[:2]:
            w.run(20, start=200)
        victim.start()
        writers[2].run(10, start=300)

        converge_and_report(
            servers, writers, "replication through faults (NATS SIGKILLed, node SIGKILLed)", timeout=90, since=" after the last write")
    finally:
        nats.kill()


def test_patches_of_different_attributes_on_different_nodes_both_survive(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats, count=2)
        r = servers[0].put("/Rec/shared", json={"id": "shared", "node": "node-1", "n": 0, "note": "start"})
        assert r.status_code in (200, 201, 204), r.text
        converge(servers)
        # Cut off from each other (NATS down), each node changes another attribute.
        nats.kill()
        assert servers[0].patch("/Rec/shared", json={"n": 1}).status_code in (200, 204)
        assert servers[1].patch("/Rec/shared", json={"note": "from node-2"}).status_code in (200, 204)
        nats.start()
        seconds = converge(servers)
        for server in servers:
            record = server.get("/Rec/shared").json()
            assert record["n"] == 1 and record["note"] == "from node-2", record
        print(f"\nconcurrent PATCHes of two attributes on two nodes: both kept, converged in {seconds:.2f} s")
    finally:
        nats.kill()


def test_a_node_cut_off_from_nats_keeps_taking_writes_and_converges_after_the_heal(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    proxy = TcpProxy(nats.port)
    try:
        app = factory.app(SCHEMA)
        servers = []
        for i in (1, 2, 3):
            url = proxy.url if i == 1 else nats.url
            env = {"MICROLITH_REPLICATION_NATS": url, "MICROLITH_REPLICATION_NODE": f"node-{i}"}
            servers.append(factory.server(app, tmp_path / f"node-{i}", env=env, extra_args=("--no-mqtt",)))
        writers = [Writer(s, f"node-{i + 1}", seed=60 + i) for i, s in enumerate(servers)]
        for w in writers:
            w.run(10)
        converge(servers)
        # The partition: node-1 on one side, NATS and the others on the other; both sides write.
        proxy.cut()
        for w in writers:
            w.run(20, start=100)
        assert servers[0].get("/Rec/").status_code == 200, "node-1 still serves"
        time.sleep(2)
        proxy.heal()
        converge_and_report(
            servers, writers, "partition (node-1 cut off from NATS by a proxy, both sides writing), healed", timeout=90,
            since=" after the heal")
    finally:
        proxy.close()
        nats.kill()


class SkewedServer(MicrolithServer):
    """A node whose clock runs `seconds` ahead (libfaketime: the process sees a shifted time)."""

    def __init__(self, *args, seconds: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.seconds = seconds

    def command(self, port: int) -> list[str]:
        return faketime_command(f"+{self.seconds}s", super().command(port))

    def stop(self, timeout: float = 15) -> int:
        if self.process is not None and self.process.poll() is None:
            stop_children(self.process.pid)
        return super().stop(timeout)


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime is not installed (scripts/test installs it)")
def test_a_node_whose_clock_runs_5_s_ahead_loses_nothing(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    try:
        app = factory.app(SCHEMA)
        servers = []
        for i in (1, 2, 3):
            env = {"MICROLITH_REPLICATION_NATS": nats.url, "MICROLITH_REPLICATION_NODE": f"node-{i}"}
            if i == 1:
                server = SkewedServer(app, tmp_path / "node-1", seconds=5, env=env, extra_args=("--no-mqtt",))
                factory.servers.append(server)
                servers.append(server.start())
            else:
                servers.append(factory.server(app, tmp_path / f"node-{i}", env=env, extra_args=("--no-mqtt",)))
        writers = [Writer(s, f"node-{i + 1}", seed=80 + i) for i, s in enumerate(servers)]
        threads = [threading.Thread(target=w.run, args=(60,)) for w in writers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        converge_and_report(servers, writers, "one node's clock 5 s ahead (faketime), 3 nodes writing at once")
        with sqlite3.connect(str(tmp_path / "node-1" / "data.sqlite")) as db:
            (txn,) = db.execute("SELECT MAX(txn) FROM _microlith_changelog").fetchone()
        assert (txn >> 16) - time.time() * 1000 > 3000, "node-1's clock runs ahead"
        # The others' writes after the skewed node's still win: their clocks moved past its versions.
        r = servers[1].put("/Rec/shared-0", json={"id": "shared-0", "node": "node-2", "n": -1})
        assert r.status_code in (200, 201, 204)
        converge(servers)
        assert all(s.get("/Rec/shared-0").json()["node"] == "node-2" for s in servers)
    finally:
        nats.kill()


def wait_for_outbox_to_empty(server, auth: dict, timeout: float = 15) -> None:
    """Waits until every entry of the node's log is in the stream (entries waiting together
    share a message, so the stream's message count does not tell)."""
    deadline = time.monotonic() + timeout
    while server.get("/_cluster", headers=auth).json()["databases"][0]["outbox"] > 0:
        assert time.monotonic() < deadline, "the node's writes did not reach the stream"
        time.sleep(0.1)


def lose_all_but_the_first_message(nats: NatsServer, origin, auth: dict) -> None:
    """Once `origin` has published every entry, deletes every message of the stream but the
    first (as its age limit, or a crash of nats-server 2.9, would), and waits until the origin
    (running with a 2 s change-log retention) has trimmed its log of them."""
    wait_for_outbox_to_empty(origin, auth, timeout=60)
    info = json.loads(nats_request(nats.port, "$JS.API.STREAM.INFO.MICROLITH_CHANGES", b""))
    for seq in range(2, info["state"]["last_seq"] + 1):
        answer = json.loads(nats_request(
            nats.port, "$JS.API.STREAM.MSG.DELETE.MICROLITH_CHANGES", json.dumps({"seq": seq, "no_erase": True}).encode()))
        assert answer.get("success") is True, answer
    time.sleep(4)


def test_a_change_the_stream_lost_is_recovered_from_its_origin(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats, count=2, env={"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root"})
        assert servers[0].put("/Rec/first", json={"id": "first", "n": 1}).status_code in (200, 201, 204)
        converge(servers)
        auth = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
        # node-2 sleeps; node-1 writes three records; the stream loses the message holding the
        # last of them (and any sent with it); a fourth write names the lost one as its predecessor.
        os.kill(servers[1].process.pid, signal.SIGSTOP)
        try:
            # Its pull request (1 s) expires first, so nothing is delivered to it meanwhile.
            time.sleep(1.5)
            for key in ("a", "b", "c"):
                assert servers[0].put(f"/Rec/{key}", json={"id": key, "n": 2}).status_code in (200, 201, 204)
            wait_for_outbox_to_empty(servers[0], auth)
            info = json.loads(nats_request(nats.port, "$JS.API.STREAM.INFO.MICROLITH_CHANGES", b""))
            answer = json.loads(nats_request(
                nats.port, "$JS.API.STREAM.MSG.DELETE.MICROLITH_CHANGES",
                json.dumps({"seq": info["state"]["last_seq"], "no_erase": True}).encode()))
            assert answer.get("success") is True, answer
            assert servers[0].put("/Rec/d", json={"id": "d", "n": 2}).status_code in (200, 201, 204)
        finally:
            os.kill(servers[1].process.pid, signal.SIGCONT)
        seconds = converge(servers, timeout=60)
        assert all(servers[1].get(f"/Rec/{key}").status_code == 200 for key in ("a", "b", "c", "d"))
        assert "have not arrived" in servers[1].logs() and "recovered" in servers[1].logs(), servers[1].logs()
        repair = servers[1].get("/_cluster", headers=auth).json()["lastRepair"]
        assert repair["origin"] == "node-1" and repair["database"] == "data" and repair["at"].endswith("Z"), repair
        print(f"\na change the stream lost, recovered from its origin's log: converged in {seconds:.2f} s")
    finally:
        nats.kill()


def test_cluster_status_over_rest_and_the_command_line(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    admin = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root"}
    auth = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
    try:
        app = factory.app(SCHEMA)
        servers = []
        for i in (1, 2):
            env = {"MICROLITH_REPLICATION_NATS": nats.url, "MICROLITH_REPLICATION_NODE": f"node-{i}", **admin}
            servers.append(factory.server(app, tmp_path / f"node-{i}", env=env, extra_args=("--no-mqtt",)))
        assert servers[0].put("/Rec/a", json={"id": "a", "n": 1}).status_code in (200, 201, 204)
        converge(servers)
        assert servers[1].get("/_cluster").status_code == 401
        deadline = time.monotonic() + 30
        while True:
            status = servers[1].get("/_cluster", headers=auth).json()
            peers = status["databases"][0]["peers"]
            if peers or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status["node"] == "node-2" and status["replicating"] is True and status["connected"] is True
        assert peers[0]["node"] == "node-1" and peers[0]["appliedSequence"] >= 1, status
        assert status["consumer"]["pending"] == 0, status
        servers[1].stop()
        out = subprocess.run(
            [BINARY, "cluster", "status", str(app), "--data-dir", str(tmp_path / "node-2")],
            capture_output=True, text=True, timeout=60, env=clean_environment())
        assert out.returncode == 0, out.stderr
        assert "node node-2" in out.stdout and "peer node-1: applied up to sequence" in out.stdout, out.stdout
    finally:
        nats.kill()


def test_a_bad_replication_setting_is_refused_with_its_name(factory, tmp_path):
    app = factory.app(SCHEMA)
    server = factory.server(
        app, env={"MICROLITH_REPLICATION_NATS": "http://127.0.0.1:4222"}, start=False, extra_args=("--no-mqtt",))
    with pytest.raises(AssertionError):
        server.start(timeout=15)
    assert "MICROLITH_REPLICATION_NATS" in server.logs()
    bad_node = factory.server(
        app, env={"MICROLITH_REPLICATION_NATS": "nats://127.0.0.1:4222", "MICROLITH_REPLICATION_NODE": "a.b"}, start=False,
        extra_args=("--no-mqtt",))
    with pytest.raises(AssertionError):
        bad_node.start(timeout=15)
    assert "MICROLITH_REPLICATION_NODE" in bad_node.logs()


class NodeClient:
    """One node of a `cluster up`, reached over HTTP (the writer and checks above use this API)."""

    def __init__(self, port: int, name: str):
        self.port = port
        self.env = {"MICROLITH_REPLICATION_NODE": name}

    def request(self, method, path, **kw):
        return http_request(self.port, method, path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def query(self, table: str) -> list:
        r = self.get(f"/{table}/")
        assert r.status_code == 200, r.text
        return r.json()


def consecutive_free_ports(count: int, low: int = 20000, high: int = 30000) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1 (and free 2000 above, for routes)."""
    for _ in range(200):
        start = random.randrange(low, high)
        if all(_free(p) and _free(p + 2000) for p in range(start, start + count)):
            return start
    raise AssertionError("no run of free ports found")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def pid_of(pattern: str) -> int:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
    assert len(out) == 1, f"{pattern}: {out}"
    return int(out[0])


def test_cluster_up_keeps_every_write_through_nats_servers_dying_and_a_stopped_node(factory, tmp_path):
    app = factory.app(SCHEMA)
    http_port = consecutive_free_ports(3)
    nats_port = consecutive_free_ports(3)
    data = tmp_path / "cluster"
    up = subprocess.Popen(
        [BINARY, "cluster", "up", str(app), "--nodes", "3", "--http-port", str(http_port), "--data-dir", str(data),
         "--nats-port", str(nats_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_environment())
    restarted: list[subprocess.Popen] = []
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        for line in up.stdout:
            lines.append(line)
            if "Ctrl-C or SIGTERM" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        assert any(f"node-3: http://127.0.0.1:{http_port + 2}" in l for l in lines), "".join(lines)
        threading.Thread(target=lambda: [lines.append(l) for l in up.stdout], daemon=True).start()
        nodes = [NodeClient(http_port + i, f"node-{i + 1}") for i in range(3)]
        writers = [Writer(n, f"node-{i + 1}", seed=40 + i) for i, n in enumerate(nodes)]
        for w in writers:
            w.run(15)
        converge(nodes, timeout=90)

        # One nats-server dies: the other two hold the stream (three replicas, two make a quorum).
        commands = {}
        for i in (0, 1):
            pid = pid_of(f"nats-server.* -p {nats_port + i} ")
            commands[i] = open(f"/proc/{pid}/cmdline").read().split("\0")[:-1]
        os.kill(pid_of(f"nats-server.* -p {nats_port} "), signal.SIGKILL)
        for w in writers:
            w.run(15, start=100)
        converge(nodes, timeout=90)

        # A second one dies: no quorum, the nodes keep taking writes; both come back.
        os.kill(pid_of(f"nats-server.* -p {nats_port + 1} "), signal.SIGKILL)
        for w in writers:
            w.run(15, start=200)
        for i in (0, 1):
            restarted.append(subprocess.Popen(commands[i], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        converge(nodes, timeout=120)

        # A node stops for 10 s (SIGSTOP) while the others write, then goes on.
        stopped = pid_of(f"microlith serve .* --http-port {http_port + 1} ")
        os.kill(stopped, signal.SIGSTOP)
        for w in (writers[0], writers[2]):
            w.run(15, start=300)
        time.sleep(10)
        os.kill(stopped, signal.SIGCONT)
        converge_and_report(
            nodes, writers,
            "cluster up, 3 nodes, 3 nats-servers (R3): one then two nats-servers SIGKILLed and restarted, a node SIGSTOPped 10 s",
            timeout=120, since=" after SIGCONT")
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            try:
                code = up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()
                code = None
        else:
            code = up.returncode
        for p in restarted:
            p.kill()
            p.wait(10)
    assert code == 0, "".join(lines[-30:])
    assert "cluster up: stopped" in "".join(lines)
    left = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes left running: {left}"


def test_cluster_up_refuses_what_it_cannot_run(tmp_path):
    for args, words in [
        (["cluster", "up", str(tmp_path / "missing")], "no schema.graphql"),
        (["cluster", "up", str(tmp_path), "--nodes", "0"], "--nodes"),
        (["cluster", "up", str(tmp_path), "--http-port", "65535", "--nodes", "3"], "--http-port"),
    ]:
        out = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=30, env=clean_environment())
        assert out.returncode != 0, args
        assert words in out.stderr, (args, out.stderr)


def version(response) -> int:
    """The record version a write answered with (its ETag: the version in base 36)."""
    return int(response.headers["ETag"].strip('"'), 36)


def test_the_same_record_written_on_two_nodes_at_once_ends_with_the_documented_winner(factory, tmp_path):
    """Last writer wins on (version, node name): of two writes of one record on two nodes, the
    one with the higher version, or with the same version the one from the node whose name
    sorts last, ends on every node."""
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats, count=2)
        rounds = 30
        outcomes: list[list] = [[None, None] for _ in range(rounds)]
        barrier = threading.Barrier(2)

        def write(i: int) -> None:
            for k in range(rounds):
                barrier.wait()
                r = servers[i].put(f"/Rec/c-{k}", json={"id": f"c-{k}", "node": f"node-{i + 1}", "n": k})
                assert r.status_code in (200, 201, 204), r.text
                outcomes[k][i] = (version(r), f"node-{i + 1}")

        threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = converge(servers)
        same_millisecond = sum(1 for a, b in outcomes if a[0] >> 16 == b[0] >> 16)
        wrong = []
        for server in servers:
            records = dump(server)
            for k, pair in enumerate(outcomes):
                winner = max(pair)[1]
                if records[f"c-{k}"]["node"] != winner:
                    wrong.append((k, pair, records[f"c-{k}"]["node"]))
        print(f"\nsame record on 2 nodes at once, {rounds} times ({same_millisecond} within one millisecond): "
              f"{len(wrong)} ended with another winner than (version, node) names; converged {seconds:.2f} s")
        assert wrong == []
    finally:
        nats.kill()


def test_x_replicate_to_answers_once_the_nodes_asked_for_have_the_write(factory, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats, env={"MICROLITH_REPLICATION_REPLICATE_TIMEOUT_MS": "1500"})
        # Until every node follows the stream, a write asking for 3 nodes may time out.
        deadline = time.monotonic() + 30
        while True:
            r = servers[0].put("/Rec/warm", json={"id": "warm", "n": 0}, headers={"X-Replicate-To": "3"})
            if r.status_code in (200, 201, 204) or time.monotonic() > deadline:
                break
        assert r.status_code in (200, 201, 204), r.text
        # Once answered, the write is on every node: read there at once, no waiting.
        late = 0
        for i in range(30):
            writer = servers[i % 3]
            r = writer.put(f"/Rec/w-{i}", json={"id": f"w-{i}", "n": i}, headers={"X-Replicate-To": "3"})
            assert r.status_code in (200, 201, 204), r.text
            assert r.headers["X-Replicated-To"] == "3"
            for other in servers:
                got = other.get(f"/Rec/w-{i}")
                late += got.status_code != 200 or got.json()["n"] != i
        print(f"\nX-Replicate-To: 3, 30 writes: read on every node at once after the answer, {late} missing")
        assert late == 0
        # PATCH and DELETE wait too.
        r = servers[1].patch("/Rec/w-0", json={"note": "patched"}, headers={"X-Replicate-To": "3"})
        assert r.status_code in (200, 204) and r.headers["X-Replicated-To"] == "3", r.text
        assert all(s.get("/Rec/w-0").json()["note"] == "patched" for s in servers)
        r = servers[2].delete("/Rec/w-1", headers={"X-Replicate-To": "3"})
        assert r.status_code in (200, 204) and r.headers["X-Replicated-To"] == "3", r.text
        assert all(s.get("/Rec/w-1").status_code == 404 for s in servers)
        # Values that are not a number of nodes are refused before anything is written.
        for bad in ("0", "three", "65", "-1"):
            r = servers[0].put("/Rec/bad", json={"id": "bad", "n": 1}, headers={"X-Replicate-To": bad})
            assert r.status_code == 400 and "X-Replicate-To" in r.json()["detail"], r.text
        assert servers[0].get("/Rec/bad").status_code == 404
        assert servers[0].get("/Rec/w-2", headers={"X-Replicate-To": "3"}).status_code == 200, "reads ignore it"
        # A node that does not answer: 3 cannot be met in time, 2 can; the write stays committed.
        os.kill(servers[2].process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            r = servers[0].put("/Rec/s-1", json={"id": "s-1", "n": 1}, headers={"X-Replicate-To": "3"})
            waited = time.monotonic() - started
            assert r.status_code == 504, r.text
            problem = r.json()
            assert problem["code"] == "replicationTimeout" and problem["replicatedTo"] == 2, problem
            assert r.headers["X-Replicated-To"] == "2" and 1.4 < waited < 10, waited
            assert servers[0].get("/Rec/s-1").status_code == 200, "committed here all the same"
            r = servers[0].put("/Rec/s-2", json={"id": "s-2", "n": 2}, headers={"X-Replicate-To": "2"})
            assert r.status_code in (200, 201, 204) and r.headers["X-Replicated-To"] == "2", r.text
            assert servers[1].get("/Rec/s-2").status_code == 200
        finally:
            os.kill(servers[2].process.pid, signal.SIGCONT)
        converge(servers)
        assert servers[2].get("/Rec/s-1").status_code == 200
    finally:
        nats.kill()


def test_x_replicate_to_on_a_node_that_does_not_replicate(factory):
    server = factory.server(factory.app(SCHEMA), extra_args=("--no-mqtt",))
    r = server.put("/Rec/a", json={"id": "a", "n": 1}, headers={"X-Replicate-To": "2"})
    assert r.status_code == 400 and "does not replicate" in r.json()["detail"], r.text
    assert server.get("/Rec/a").status_code == 404
    r = server.put("/Rec/a", json={"id": "a", "n": 1}, headers={"X-Replicate-To": "1"})
    assert r.status_code in (200, 201, 204) and r.headers["X-Replicated-To"] == "1", r.text


def test_a_node_away_longer_than_the_logs_keep_changes_resyncs_from_another_node(factory, tmp_path):
    """node-2 is away while node-1 writes; the stream loses those entries (as its age limit, or a
    crash of nats-server 2.9, would) and node-1's own log is trimmed past them (2 s retention):
    node-2 finds the gap, node-1 can no longer answer it from its log, and node-2 merges node-1's
    tables row by row instead."""
    admin = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root", "MICROLITH_CHANGELOG_RETENTION_SECONDS": "2"}
    auth = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats, count=2, env=admin)
        assert servers[0].put("/Rec/old", json={"id": "old", "n": 0}).status_code in (200, 201, 204)
        converge(servers)
        servers[1].stop()
        for i in range(20):
            assert servers[0].put(f"/Rec/a-{i}", json={"id": f"a-{i}", "n": i}).status_code in (200, 201, 204)
        assert servers[0].delete("/Rec/old").status_code in (200, 204)
        lose_all_but_the_first_message(nats, servers[0], auth)
        for i in (20, 21):
            assert servers[0].put(f"/Rec/a-{i}", json={"id": f"a-{i}", "n": i}).status_code in (200, 201, 204)
        servers[1].start()
        seconds = converge(servers, timeout=60)
        assert servers[1].get("/Rec/a-3").status_code == 200 and servers[1].get("/Rec/old").status_code == 404
        logs = servers[1].logs()
        assert "cannot be recovered" in logs and "resync of database data from node-1" in logs, logs
        status = servers[1].get("/_cluster", headers=auth).json()
        assert status["lastResync"]["data"]["peer"] == "node-1", status
        assert status["databases"][0]["gaps"] == [], status
        print(f"\na node away longer than the stream and its peer's log kept its changes: resynced from node-1, converged "
              f"{seconds:.2f} s after its restart ({status['lastResync']['data']})")
        # On request: nothing diverged, nothing changes; only a super user may ask.
        r = servers[1].post("/_cluster/resync", headers=auth)
        assert r.status_code == 200 and r.json()["data"]["changed"] == 0 and r.json()["data"]["received"] >= 22, r.text
        r = servers[1].post("/_cluster/resync?from=node-9", headers=auth)
        assert r.status_code == 503 and "no other node answered" in r.json()["detail"], r.text
        assert servers[1].post("/_cluster/resync").status_code == 401
    finally:
        nats.kill()


def test_resync_on_a_node_that_does_not_replicate_is_refused(factory):
    admin = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root"}
    auth = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
    server = factory.server(factory.app(SCHEMA), env=admin, extra_args=("--no-mqtt",))
    r = server.post("/_cluster/resync", headers=auth)
    assert r.status_code == 400 and "does not replicate" in r.json()["detail"], r.text


def test_digests_find_rows_a_node_lost_without_a_trace_and_bring_them_back(factory, tmp_path):
    """Rows vanish from each node's files while it is stopped (as a restore of an old disk
    image would do): no log entry, no gap, no tombstone says so. A digest comparison finds the
    buckets that differ and brings each node's missing rows back from the other."""
    env = {
        "MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root",
        "MICROLITH_REPLICATION_DIGEST_SETTLED_SECONDS": "0", "MICROLITH_REPLICATION_DIGEST_INTERVAL_SECONDS": "0",
    }
    auth = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats, count=2, env=env)
        for i in range(200):
            assert servers[i % 2].put(f"/Rec/r-{i}", json={"id": f"r-{i}", "n": i}).status_code in (200, 201, 204)
        converge(servers)
        vanished = {1: ["r-3", "r-150"], 2: ["r-77"]}
        for number, keys in vanished.items():
            server = servers[number - 1]
            server.stop()
            with sqlite3.connect(str(tmp_path / f"node-{number}" / "data.sqlite")) as db:
                for key in keys:
                    assert db.execute("DELETE FROM r_Rec WHERE id = ?", (key,)).rowcount == 1
            server.start()
        for number, keys in vanished.items():
            assert all(servers[number - 1].get(f"/Rec/{key}").status_code == 404 for key in keys)
        time.sleep(0.1)
        reports = {}
        for number in (2, 1):
            r = servers[number - 1].post("/_cluster/digest", headers=auth)
            assert r.status_code == 200, r.text
            reports[number] = r.json()["data"]
            assert reports[number]["changed"] == len(vanished[number]), reports
            assert reports[number]["received"] < 100, f"only the buckets that differ are sent: {reports}"
        seconds = converge(servers, timeout=30)
        for server in servers:
            assert all(server.get(f"/Rec/{key}").status_code == 200 for key in ("r-3", "r-150", "r-77"))
        again = servers[0].post("/_cluster/digest", headers=auth).json()["data"]
        assert again["differingBuckets"] == 0 and again["changed"] == 0, again
        status = servers[0].get("/_cluster", headers=auth).json()
        assert status["lastDigest"]["databases"]["data"]["differingBuckets"] == 0, status
        assert servers[0].post("/_cluster/digest").status_code == 401
        print(f"\nrows lost without a trace, found by digests: node-2 {reports[2]}, node-1 {reports[1]}; "
              f"converged {seconds:.2f} s after")
    finally:
        nats.kill()


def test_digest_settings_out_of_range_are_refused_with_their_names(factory):
    app = factory.app(SCHEMA)
    for name, value in (("MICROLITH_REPLICATION_DIGEST_INTERVAL_SECONDS", "-1"), ("MICROLITH_REPLICATION_DIGEST_SETTLED_SECONDS", "ten")):
        server = factory.server(app, env={name: value}, start=False, extra_args=("--no-mqtt",))
        with pytest.raises(AssertionError):
            server.start(timeout=15)
        assert name in server.logs(), server.logs()


def test_two_clusters_on_one_nats_under_different_stream_names_stay_apart(factory, tmp_path):
    """Two clusters of two nodes share one nats-server under different `replication.stream`
    names (the nodes of both are named node-1 and node-2): each cluster's writes reach its own
    nodes only, and a digest comparison is answered within the cluster."""
    admin = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root", "MICROLITH_REPLICATION_DIGEST_SETTLED_SECONDS": "0"}
    auth = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
    nats = NatsServer(tmp_path / "nats").start()
    try:
        clusters = {}
        for name in ("SHOP_A", "SHOP_B"):
            clusters[name] = start_nodes(factory, tmp_path / name, nats, count=2, env={**admin, "MICROLITH_REPLICATION_STREAM": name})
        for name, servers in clusters.items():
            for i in range(10):
                assert servers[i % 2].put(f"/Rec/{name}-{i}", json={"id": f"{name}-{i}", "n": i}).status_code in (200, 201, 204)
        for name, servers in clusters.items():
            converge(servers)
            assert sorted(dump(servers[0])) == sorted(f"{name}-{i}" for i in range(10)), dump(servers[0])
        for name, servers in clusters.items():
            r = servers[1].post("/_cluster/digest", headers=auth)
            assert r.status_code == 200 and r.json()["data"]["differingBuckets"] == 0, r.text
            assert servers[0].get("/_cluster", headers=auth).json()["stream"] == name
        streams = json.loads(nats_request(nats.port, "$JS.API.STREAM.NAMES", b""))["streams"]
        assert {"SHOP_A", "SHOP_B"} <= set(streams), streams
    finally:
        nats.kill()


def test_a_second_process_under_a_running_nodes_name_is_refused(factory, tmp_path):
    """Two processes under one replication.node would publish two logs as one: the second
    to start stops with a message naming the first, and the first keeps replicating."""
    nats = NatsServer(tmp_path / "nats").start()
    try:
        first, other = start_nodes(factory, tmp_path, nats, count=2)
        app = factory.app(SCHEMA)
        twin = factory.server(
            app, tmp_path / "twin", env={"MICROLITH_REPLICATION_NATS": nats.url, "MICROLITH_REPLICATION_NODE": "node-1"},
            start=False, extra_args=("--no-mqtt",))
        try:
            twin.start(timeout=30)
        except AssertionError:
            pass  # it may stop before it is ready
        deadline = time.monotonic() + 45  # it waits 10 s for the holder to stop first
        while twin.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert twin.process.poll() not in (None, 0), "the twin exits with an error"
        logs = twin.logs()
        assert "another process already replicates as node node-1" in logs and "replication.node" in logs, logs
        assert "waiting up to" in logs, logs
        assert "is being started as node node-1" in first.logs(), first.logs()
        assert first.put("/Rec/after", json={"id": "after", "n": 1}).status_code in (200, 201, 204)
        converge([first, other])
        assert other.get("/Rec/after").status_code == 200
    finally:
        nats.kill()


def test_a_node_killed_in_the_middle_of_a_resync_finishes_it_after_a_restart(factory, tmp_path):
    """As the resync test above, with 3,000 rows to merge, and node-2 SIGKILLed while it merges
    them: the gap its origin could not fill is kept in its store, so after a restart it resyncs
    again (the merge is row by row on stamps: the rows merged before the kill change nothing the
    second time) and ends with every row."""
    env = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root", "MICROLITH_CHANGELOG_RETENTION_SECONDS": "2"}
    auth = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
    rows = 3000
    nats = NatsServer(tmp_path / "nats").start()
    try:
        servers = start_nodes(factory, tmp_path, nats, count=2, env=env)
        assert servers[0].put("/Rec/old", json={"id": "old", "n": 0}).status_code in (200, 201, 204)
        converge(servers)
        servers[1].stop()

        def write(part: int) -> None:
            for i in range(part, rows, 8):
                assert servers[0].put(f"/Rec/m-{i}", json={"id": f"m-{i}", "n": i}).status_code in (200, 201, 204)

        threads = [threading.Thread(target=write, args=(part,)) for part in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lose_all_but_the_first_message(nats, servers[0], auth)
        assert servers[0].put("/Rec/last", json={"id": "last", "n": 1}).status_code in (200, 201, 204)

        servers[1].start()
        deadline = time.monotonic() + 60
        while "cannot be recovered" not in servers[1].logs():
            assert time.monotonic() < deadline, servers[1].logs()
            time.sleep(0.02)
        # Killed once some pages are merged (its files are read beside it: WAL).
        while len(dump_raw(tmp_path / "node-2")) < 600 and "resync of database data from" not in servers[1].logs():
            assert time.monotonic() < deadline, servers[1].logs()
            time.sleep(0.005)
        servers[1].kill()
        killed_mid_resync = "resync of database data from" not in servers[1].logs()
        merged_before = len(dump_raw(tmp_path / "node-2"))
        servers[1].start()
        seconds = converge(servers, timeout=120)
        assert len(dump(servers[1])) == rows + 2, "every row: old, the 3,000 and last"
        status = servers[1].get("/_cluster", headers=auth).json()
        assert status["lastResync"]["data"]["peer"] == "node-1" and status["databases"][0]["gaps"] == [], status
        print(f"\nkilled {'in the middle of' if killed_mid_resync else 'after'} a resync of {rows} rows "
              f"({merged_before} rows held at the kill): resynced again after the restart, converged {seconds:.2f} s after it "
              f"({status['lastResync']['data']})")
        assert killed_mid_resync, "the resync ended before the kill: the test did not kill it in the middle"
    finally:
        nats.kill()


def dump_raw(data_dir) -> list:
    """The ids a stopped node's files hold."""
    with sqlite3.connect(str(data_dir / "data.sqlite")) as db:
        return [row[0] for row in db.execute("SELECT id FROM r_Rec")]
