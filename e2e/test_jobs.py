"""Background jobs, schedules, hooks and resources of the example app (examples/shop-modules),
with real processes: a job killed mid-run runs again after a restart, a graceful stop lets a
running job finish, a refused checkout leaves neither order nor job, table rules apply to REST
writes."""

from __future__ import annotations

import base64
import time

import pytest

from microlith_e2e import assert_problem, wait_for
from shop_app import CART, EXPECTED_TOTAL, ShopServer, copy_app, requires_shop

pytestmark = requires_shop

# The job queue is for a super user: `root` is made at first start and signs in with HTTP Basic.
LEASE = {"MICROLITH_JOBS_LEASE_SECONDS": "2", "MICROLITH_JOBS_POLL_MS": "50",
         "MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root").decode()}


@pytest.fixture
def shop(tmp_path):
    server = ShopServer(copy_app(tmp_path), tmp_path / "data", env=LEASE)
    yield server.start()
    server.stop()




def checkout(server, processing_ms=0) -> dict:
    r = server.post("/_operations/orders/checkout", json={"cart": CART, "processingMs": processing_ms})
    assert r.status_code == 200, r.text
    order = r.json()
    assert order["status"] == "placed" and order["totalCents"] == EXPECTED_TOTAL
    return order


def fulfil_job(server) -> dict:
    jobs = server.get("/_jobs?name=orders.fulfil", headers=ADMIN).json()["jobs"]
    assert len(jobs) == 1, jobs
    return jobs[0]


def status(server, order_id) -> str:
    r = server.get(f"/orders/{order_id}/status")
    assert r.status_code == 200, r.text
    return r.json()["status"]


def test_a_job_killed_mid_run_runs_again_after_restart(shop):
    order = checkout(shop, processing_ms=3000)
    assert wait_for(lambda: fulfil_job(shop)["state"] == "running"), fulfil_job(shop)
    shop.kill()  # SIGKILL while the job sleeps: no chance to finish or give it back
    shop.start()
    job = fulfil_job(shop)
    assert job["state"] in ("running", "pending"), job
    assert wait_for(lambda: status(shop, order["id"]) == "fulfilled", timeout=30), shop.logs()
    job = fulfil_job(shop)
    assert job["state"] == "done" and job["attempts"] == 2, job


def test_a_graceful_stop_lets_the_running_job_finish(shop):
    order = checkout(shop, processing_ms=1500)
    assert wait_for(lambda: fulfil_job(shop)["state"] == "running")
    assert shop.stop() == 0
    shop.start()
    # Finished before the process exited: fulfilled at once, one attempt.
    assert status(shop, order["id"]) == "fulfilled"
    job = fulfil_job(shop)
    assert job["state"] == "done" and job["attempts"] == 1, job


def test_a_refused_checkout_leaves_no_order_and_no_job(shop):
    r = shop.post("/_operations/orders/checkout", json={"cart": {"items": [{"sku": "caviar", "quantity": 1}]}})
    assert_problem(r, 404)
    assert r.json()["code"] == "notFound"
    listed = shop.get("/_jobs", headers=ADMIN).json()
    assert listed["jobs"] == [] and all(n == 0 for n in listed["counts"].values()), listed
    assert shop.query("Order") == []


def test_order_rules_apply_to_rest_writes(shop):
    bad = shop.put("/Order/o1", json={"totalCents": 100, "status": "lost", "lines": []})
    assert_problem(bad, 400)
    assert "status must be one of fulfilled, placed" in bad.json()["detail"]
    assert shop.get("/orders/o1/status").status_code == 404
    assert shop.put("/Order/o1", json={"totalCents": 100, "status": "fulfilled", "lines": []}).status_code == 201
    back = shop.patch("/Order/o1", json={"status": "placed"})
    assert_problem(back, 409)
    assert_problem(shop.delete("/Order/o1"), 409)
    assert status(shop, "o1") == "fulfilled"
    r = shop.get("/orders/o1/status")
    assert r.headers.get("x-request-id"), r.headers


def test_jobs_and_schedules_are_visible_over_rest(shop):
    order = checkout(shop)
    assert wait_for(lambda: status(shop, order["id"]) == "fulfilled")
    job = fulfil_job(shop)
    assert job["input"] == {"orderId": order["id"], "processingMs": 0}
    assert shop.get(f"/_jobs/{job['id']}", headers=ADMIN).json()["state"] == "done"
    # Only a super user reads or retries jobs.
    assert_problem(shop.get("/_jobs"), 401, "the anonymous role may not read the job queue")
    assert_problem(shop.post(f"/_jobs/{job['id']}/retry"), 401, "the anonymous role may not retry jobs")
    assert_problem(shop.get("/_schedules"), 401, "may not read the schedules")
    assert_problem(shop.get("/_jobs/abc", headers=ADMIN), 400)
    assert_problem(shop.get("/_jobs?state=stuck", headers=ADMIN), 400)
    assert_problem(shop.get("/_jobs?database=nope", headers=ADMIN), 404)
    schedules = shop.get("/_schedules", headers=ADMIN).json()["schedules"]
    assert [s["name"] for s in schedules] == ["orders.daily-report"]
    assert schedules[0]["schedule"] == "cron 5 0 * * *" and schedules[0]["nextRun"].endswith("T00:05:00.000Z")
    spec = shop.get("/openapi.json").json()
    assert "/_operations/orders/checkout" in spec["paths"] and "/orders/{id}/status" in spec["paths"]
