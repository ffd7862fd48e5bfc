"""`storefront cluster up`: two nodes of the storefront and three nats-servers on loopback from one
command; a checkout on one node takes stock that the other node then shows; SIGTERM stops
everything and frees every port."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time

import pytest

from microlith_e2e import REPO, clean_environment, http_request, wait_for
from nats_helpers import nats_binary

STOREFRONT_BIN = os.environ.get("STOREFRONT_BIN") or str(REPO / "Apps" / "Storefront" / ".build" / "debug" / "storefront")

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(STOREFRONT_BIN) and not os.environ.get("SHOP_BIN_REQUIRED"),
        reason=f"the storefront is not built ({STOREFRONT_BIN}); scripts/test builds it"),
    pytest.mark.skipif(nats_binary() is None, reason="nats-server is not installed (scripts/test installs it)"),
]


def free_ports() -> tuple[int, int]:
    """A NATS client port with the next two and their route ports (2000 above) free, and two free
    HTTP ports after them."""
    rnd = random.Random()
    for _ in range(500):
        # Below the ephemeral range (32768 and up here), where an outgoing connection can take a
        # port between this check and the bind.
        nats = rnd.randrange(20000, 30000)
        if all(free(p) for p in (nats, nats + 1, nats + 2, nats + 2000, nats + 2001, nats + 2002, nats + 10, nats + 11)):
            return nats, nats + 10
    raise RuntimeError("no free ports")


def free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def stock(port: int, pid: str):
    r = http_request(port, "GET", f"/api/p/{pid}")
    if r.status_code != 200:
        return None
    product = r.json()
    return product.get("stock", (product.get("product") or {}).get("stock"))




def test_storefront_cluster_up_runs_replicating_nodes_and_stops_them(tmp_path):
    nats_port, http_port = free_ports()
    process = subprocess.Popen(
        [STOREFRONT_BIN, "cluster", "up", "--nodes", "2", "--port", str(http_port), "--nats-port", str(nats_port),
         "--data-dir", str(tmp_path / "cluster"), "--stock", "50", "--log-level", "error"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_environment())
    try:
        lines = []
        deadline = time.monotonic() + 120
        while not any(line.startswith("Ctrl-C") for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, (lines, process.stderr.read() if process.poll() is not None else "")
            line = process.stdout.readline()
            if line.startswith(("cluster up", "node-", "Ctrl-C")):
                lines.append(line.strip())
        assert f"node-1: http://127.0.0.1:{http_port}" in lines and f"node-2: http://127.0.0.1:{http_port + 1}" in lines, lines
        ports = [http_port, http_port + 1]
        pid = "p000001"
        # Node 1 seeded the catalogue with 50 of each; node 2 has it by replication.
        assert wait_for(lambda: all(stock(p, pid) == 50 for p in ports), timeout=90), [stock(p, pid) for p in ports]
        r = http_request(ports[0], "POST", "/api/checkout", json={"items": [{"productId": pid, "quantity": 3}]})
        assert r.status_code == 201, r.text
        assert wait_for(lambda: stock(ports[1], pid) == 47, timeout=30), stock(ports[1], pid)
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=90)
        assert process.returncode == 0 and "cluster up: stopped" in out, out
        assert all(free(p) for p in ports + [nats_port, nats_port + 1, nats_port + 2])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
