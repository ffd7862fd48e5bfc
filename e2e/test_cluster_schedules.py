"""Schedules in a replicated cluster: two nodes of the example shop (examples/shop-modules), both
with the `cron` role, replicate through a real nats-server; the daily report comes due on both
clocks (libfaketime starts them just before 00:05 UTC) and fires once in the cluster, on the
node that holds the schedules' lease, and its report replicates to the other node."""

from __future__ import annotations

import base64
import shutil
import time

import pytest

from microlith_e2e import faketime_command, stop_children, wait_for
from nats_helpers import NatsServer, nats_binary
from shop_app import ShopServer, copy_app, requires_shop

pytestmark = [
    requires_shop,
    pytest.mark.skipif(nats_binary() is None, reason="nats-server is not installed (scripts/test installs it)"),
    pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime is not installed (scripts/test installs it)"),
]

ADMIN = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}
DAY = "2031-03-04"


class EarlyShop(ShopServer):
    """A shop node whose clock starts at `DAY` 00:04:40 UTC and runs on from there."""

    def command(self, port: int) -> list[str]:
        return faketime_command(f"@{DAY} 00:04:40", [*super().command(port), "--no-mqtt"])

    def stop(self, timeout: float = 15) -> int:
        if self.process is not None and self.process.poll() is None:
            stop_children(self.process.pid)
        return super().stop(timeout)




def test_a_schedule_fires_once_in_the_cluster_on_the_lease_holder(tmp_path):
    nats = NatsServer(tmp_path / "nats").start()
    app = copy_app(tmp_path)
    nodes = []
    try:
        for i in (1, 2):
            env = {
                "MICROLITH_REPLICATION_NATS": nats.url, "MICROLITH_REPLICATION_NODE": f"node-{i}",
                "MICROLITH_REPLICATION_LEASE_SECONDS": "2", "MICROLITH_JOBS_POLL_MS": "50",
                "MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root",
            }
            nodes.append(EarlyShop(app, tmp_path / f"node-{i}", env=env).start())

        def holders():
            leases = [n.get("/_cluster", headers=ADMIN).json().get("schedules", {}).get("lease") for n in nodes]
            return leases if leases[0] is not None and all(lease == leases[0] for lease in leases) else None

        leases = wait_for(holders, timeout=20)
        assert leases, "the nodes never agreed on who holds the schedules' lease"
        holder = int(leases[0].split("-")[1]) - 1
        fires_here = [n.get("/_cluster", headers=ADMIN).json()["schedules"]["firesHere"] for n in nodes]
        assert fires_here == [i == holder for i in range(2)]

        # 00:05 comes on both clocks; the report is written once, by the holder, and replicates.
        def reports():
            found = [n.get(f"/Report/{DAY}") for n in nodes]
            return all(r.status_code == 200 for r in found)

        assert wait_for(reports, timeout=60), "the daily report did not reach both nodes"
        time.sleep(2)  # a second firing, if there were one, would have come by now
        runs = [n.get("/_jobs?name=orders.daily-report", headers=ADMIN).json()["jobs"] for n in nodes]
        print(f"\ndaily-report runs per node: {[len(r) for r in runs]} (holder node-{holder + 1})")
        assert [len(r) for r in runs] == [1 if i == holder else 0 for i in range(2)]
        schedules = [n.get("/_schedules", headers=ADMIN).json()["schedules"][0] for n in nodes]
        assert all(s["nextRun"].endswith("T00:05:00.000Z") and not s["nextRun"].startswith(DAY) for s in schedules), schedules
        assert schedules[holder]["lastRun"] == f"{DAY}T00:05:00.000Z"
        assert schedules[1 - holder]["lastRun"] is None, "the other node moved on without a run"
    finally:
        for n in nodes:
            n.stop()
        nats.kill()
