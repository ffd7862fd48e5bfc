"""`GET /metrics` with a real `microlith serve`: the Prometheus text format (parsed by the
official Python client's parser), requests counted by method, route pattern and status, cache
hits answered ahead of the router, group commits, jobs and MQTT; a super user only; off with
`metrics.enabled: false`."""

from __future__ import annotations

import base64

from prometheus_client.parser import text_string_to_metric_families

from microlith_e2e import assert_problem
from mqtt_helpers import Broker, Paho

SCHEMA = """
type Note @table @export {
    id: ID @primaryKey
    text: String
    n: Int @indexed
}
"""

ADMIN_ENV = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root-123"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root-123").decode()}
ROLES = "anonymous:\n  tables:\n    Note: [read, insert, update]\n"


def scrape(server) -> dict[str, dict[tuple, float]]:
    """name → {sorted label items → value}, for every sample of GET /metrics."""
    r = server.get("/metrics", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels) -> float:
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_requests_caches_and_commits_are_counted_by_route_pattern(factory):
    app = factory.app(SCHEMA)
    (app / "roles.yaml").write_text(ROLES)
    server = factory.server(app, env=ADMIN_ENV)
    assert_problem(server.get("/metrics"), 401, "read the metrics")
    savepoint_writes = value(scrape(server), "microlith_store_savepoint_writes_total", database="data")
    for i in range(1, 21):
        assert server.put(f"/Note/n{i}", json={"id": f"n{i}", "text": "t", "n": i}).status_code == 201
    for _ in range(3):
        assert server.get("/Note/?n=lt=5").status_code == 200
    for i in (1, 2, 3):
        assert server.get(f"/Note/n{i}").status_code == 200
    assert server.get("/Note/missing").status_code == 404
    assert server.get("/nothing/here/at/all").status_code == 404

    samples = scrape(server)
    requests = "microlith_http_requests_total"
    assert value(samples, requests, method="PUT", route="/Note/{id}", status="201") == 20
    assert value(samples, requests, method="GET", route="/Note/", status="200") == 3
    assert value(samples, requests, method="GET", route="/Note/{id}", status="404") == 1
    assert value(samples, requests, method="GET", route="static", status="404") == 1
    # No raw path or id ever becomes a label.
    routes = {dict(k)["route"] for k in samples[requests]}
    assert not any("n1" in r or "missing" in r or "nothing" in r for r in routes), routes
    durations = "microlith_http_request_duration_seconds_count"
    assert value(samples, durations, method="PUT", route="/Note/{id}") == 20
    # The three reads of written records: the cache held them, so the event loop answered them
    # ahead of the router, and they are counted there.
    assert value(samples, "microlith_http_cached_answers_total", kind="record") >= 3
    assert value(samples, "microlith_record_cache_hits_total") >= 3
    assert value(samples, "microlith_store_writes_total", database="data") >= 20
    commits = value(samples, "microlith_store_commits_total", database="data")
    assert 1 <= commits <= 20 + 2
    assert value(samples, "microlith_store_batch_size_count", database="data") == commits
    assert value(samples, "microlith_store_commit_seconds_count", database="data") == commits
    # Every PUT was valid: no batch without savepoints had to run again.
    assert (("database", "data"),) in samples.get("microlith_store_batch_replays_total", {})
    assert value(samples, "microlith_store_batch_replays_total", database="data") == 0
    # REST writes of a table without hooks are replayable: none of the PUTs ran in a savepoint of its own.
    assert (("database", "data"),) in samples.get("microlith_store_savepoint_writes_total", {})
    assert value(samples, "microlith_store_savepoint_writes_total", database="data") == savepoint_writes
    assert value(samples, "microlith_changelog_entries", database="data") >= 20
    assert value(samples, "microlith_database_file_bytes", database="data", file="database") > 0
    assert value(samples, "microlith_connections_open") >= 1
    (info_labels, info), = samples["microlith_info"].items()
    assert info == 1 and dict(info_labels)["version"] and dict(info_labels)["node"]

    # The counters only grow: a second scrape sees the first one's request too.
    again = scrape(server)
    assert value(again, requests, method="GET", route="/metrics", status="200") >= 1


def test_mqtt_messages_reach_the_metrics_through_swift_metrics(factory):
    app = factory.app(SCHEMA)
    server = factory.server(app, env=ADMIN_ENV)
    client = Paho(Broker("microlith", "127.0.0.1", server.mqtt_port, server.port, "/mqtt", server), client_id="metrics-client")
    try:
        for i in range(5):
            client.publish(f"plain/topic/{i}", b"x", qos=1)
        samples = scrape(server)
        assert value(samples, "microlith_mqtt_messages_received_total") >= 5
        assert value(samples, "microlith_mqtt_connections") >= 1
    finally:
        client.close()


def test_messages_a_session_has_no_room_for_are_counted_as_dropped(factory):
    """QoS 1 messages past `mqtt.maxQueuedMessages` for a session are not queued (RealTime.md,
    limits): `microlith_mqtt_messages_dropped_total{reason="queue_full"}` counts each of them."""
    app = factory.app(SCHEMA, yaml="mqtt:\n  maxQueuedMessages: 3\n")
    server = factory.server(app, env=ADMIN_ENV)
    broker = Broker("microlith", "127.0.0.1", server.mqtt_port, server.port, "/mqtt", server)
    offline = Paho(broker, "v311", client_id="metrics-offline", clean=False)
    offline.subscribe("plain/queued", qos=1)
    offline.disconnect()
    publisher = Paho(broker, client_id="metrics-publisher")
    try:
        for i in range(10):
            publisher.publish("plain/queued", f"m{i}".encode(), qos=1)
        samples = scrape(server)
        assert value(samples, "microlith_mqtt_messages_dropped_total", reason="queue_full") == 7
    finally:
        publisher.close()
        offline.close()


def test_a_routed_request_resumes_a_task_a_few_times_not_once_per_async_call(factory):
    """Swift tasks run on the event loops as on the generic executor: a request through the
    router's middleware (a dozen nested async calls) is resumed from the loop's queue only
    where it really waits, not at every call and return (about 90 times per request when jobs
    ran with the loop as their serial executor)."""
    app = factory.app(SCHEMA)
    (app / "roles.yaml").write_text(ROLES)
    server = factory.server(app, env=ADMIN_ENV)
    assert server.put("/Note/a", json={"id": "a", "text": "t", "n": 1}).status_code == 201
    before = value(scrape(server), "microlith_task_resumptions_total")
    assert before > 0
    count = 200
    for _ in range(count):
        # A query: never answered from the record cache ahead of the router.
        assert server.get("/Note/?n=1").status_code == 200
    after = value(scrape(server), "microlith_task_resumptions_total")
    per_request = (after - before) / count
    assert 0 < per_request < 15, per_request


def test_metrics_can_be_turned_off(factory):
    app = factory.app(SCHEMA, yaml="metrics:\n  enabled: false\n")
    server = factory.server(app, env=ADMIN_ENV)
    r = server.get("/metrics", headers=ADMIN)
    assert r.status_code == 404, r.text
