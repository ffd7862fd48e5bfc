"""The operator's commands and endpoint, with real processes: `GET /_status`, `microlith status`,
`microlith tables`, `microlith query` (read-only, beside a running server or without one) and
`microlith check --against` (what a start would migrate, tried on a copy)."""

from __future__ import annotations

import base64
import json
import shutil

from microlith_e2e import assert_problem, run_microlith

SCHEMA = """
type Note @table @export {
    id: ID @primaryKey
    text: String
    n: Int @indexed
}

type Event @table(database: "events") @export(name: "Events") {
    id: ID @primaryKey
    kind: String
}
"""

ADMIN_ENV = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root-123"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root-123").decode()}
# A roles.yaml, so that the anonymous role may not read the status.
ROLES = "anonymous:\n  tables:\n    Note: [read, insert, update]\n"


def serve(factory, schema=SCHEMA):
    app = factory.app(schema)
    (app / "roles.yaml").write_text(ROLES)
    server = factory.server(app, env=ADMIN_ENV)
    for i in range(1, 6):
        assert server.put(f"/Note/n{i}", json={"id": f"n{i}", "text": f"note {i}", "n": i}).status_code in (200, 201), i
    assert server.put("/Events/e1", json={"id": "e1", "kind": "k"}, headers=ADMIN).status_code in (200, 201)
    return app, server


def test_the_status_endpoint_gives_an_operator_the_first_figures(factory):
    app, server = serve(factory)
    assert_problem(server.get("/_status"), 401, "read the server status")
    status = server.get("/_status", headers=ADMIN).json()
    assert status["version"] and status["node"] and status["uptimeSeconds"] >= 0
    assert [d["name"] for d in status["databases"]] == ["data", "events"]
    data = status["databases"][0]
    assert data["tables"]["Note"] == 5 and data["bytes"] > 0 and data["lastChange"] >= 5
    assert status["databases"][1]["tables"] == {"Event": 1}
    assert status["connections"]["open"] >= 1 and status["connections"]["limit"] > 0
    assert status["recordCache"]["limitBytes"] > 0
    assert isinstance(status["subscriptions"], int)


def test_status_reads_the_files_and_asks_the_running_server(factory):
    app, server = serve(factory)
    url = f"http://127.0.0.1:{server.port}"
    result = run_microlith("status", "--data-dir", server.data_dir, "--url", url, env={
        "MICROLITH_USER": "root", "MICROLITH_PASSWORD": "pw-root-123"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ": in use" in out and "Note: 5 records" in out and "Event: 1 record" in out, out
    assert f"server {url}: microlith" in out and "connections:" in out and "record cache:" in out, out

    anonymous = run_microlith("status", "--data-dir", server.data_dir, "--url", url)
    assert anonymous.returncode == 0 and "wants a super user" in anonymous.stdout, anonymous.stdout

    as_json = run_microlith("status", "--data-dir", server.data_dir, "--json")
    assert as_json.returncode == 0, as_json.stderr
    body = json.loads(as_json.stdout)
    assert body["inUse"] is True and body["server"] is None
    assert {d["name"]: d["tables"] for d in body["databases"]} == {"data": {"Note": 5}, "events": {"Event": 1}}

    server.stop()
    stopped = run_microlith("status", "--data-dir", server.data_dir)
    assert stopped.returncode == 0 and "not in use" in stopped.stdout, stopped.stdout
    nowhere = run_microlith("status", "--data-dir", server.data_dir / "missing")
    assert nowhere.returncode != 0 and "there is no data folder" in nowhere.stderr
    neither = run_microlith("status")
    assert neither.returncode != 0 and "--data-dir" in neither.stderr


def test_tables_lists_the_schema_with_the_records_held(factory):
    app, server = serve(factory)
    result = run_microlith("tables", app, "--data-dir", server.data_dir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Note: database data; key id: ID; 5 records; indexed n; REST /Note/"), lines
    assert lines[1].startswith("Event: database events; key id: ID; 1 record; no index; REST /Events/"), lines
    fresh = run_microlith("tables", app, "--data-dir", server.data_dir.parent / "nothing-here")
    assert fresh.returncode == 0 and "not in the data folder yet" in fresh.stdout


def test_query_runs_the_url_language_read_only_beside_a_server(factory):
    app, server = serve(factory)
    result = run_microlith("query", app, "--data-dir", server.data_dir, "Note/?n=gt=2&sort(-n)&limit(2)")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["n5", "n4"]
    assert "2 records; plan: index" in result.stderr, result.stderr

    one = run_microlith("query", app, "--data-dir", server.data_dir, "/Note/n3")
    assert one.returncode == 0 and json.loads(one.stdout)["text"] == "note 3", one.stderr
    prefix = run_microlith("query", app, "--data-dir", server.data_dir, "Note/n/?select(id)")
    assert prefix.returncode == 0 and len(prefix.stdout.splitlines()) == 5, prefix.stderr
    other = run_microlith("query", app, "--data-dir", server.data_dir, "Events")
    assert other.returncode == 0 and json.loads(other.stdout)["kind"] == "k", other.stderr

    for target, message in [
        ("Note/nope", "has no record nope"),
        ("Nope/?a=1", "no table named 'Nope'"),
        ("Note/?n=gt=", "the query"),
        ("Note/?limit(20000)", "above --max-results"),
        ("", "name a table"),
    ]:
        bad = run_microlith("query", app, "--data-dir", server.data_dir, target)
        assert bad.returncode != 0 and message in bad.stderr, (target, bad.stderr)
    # It wrote nothing: the server's log position is where it was.
    before = server.get("/_status", headers=ADMIN).json()["databases"][0]["lastChange"]
    assert run_microlith("query", app, "--data-dir", server.data_dir, "Note/?n=1").returncode == 0
    assert server.get("/_status", headers=ADMIN).json()["databases"][0]["lastChange"] == before

    # A schema the folder is not migrated to: refused, nothing changed.
    changed = app.parent / "changed-app"
    shutil.copytree(app, changed)
    (changed / "schema.graphql").write_text(SCHEMA.replace("text: String", "text: String @indexed"))
    refused = run_microlith("query", changed, "--data-dir", server.data_dir, "Note/?text=note 1")
    assert refused.returncode != 0 and "not migrated to this schema.graphql" in refused.stderr, refused.stderr


def test_check_against_says_what_a_start_would_migrate_without_changing_the_folder(factory):
    app, server = serve(factory)
    same = run_microlith("check", app, "--against", server.data_dir)
    assert same.returncode == 0 and "a start migrates nothing" in same.stdout, same.stdout

    changed = app.parent / "changed-app"
    shutil.copytree(app, changed)
    (changed / "schema.graphql").write_text(
        SCHEMA.replace("text: String", "text: String @indexed") + "\ntype Tag @table { id: ID @primaryKey }\n")
    plan = run_microlith("check", changed, "--against", server.data_dir)
    assert plan.returncode == 0, plan.stderr
    assert "a start would" in plan.stdout and "table Note: attribute text indexed" in plan.stdout, plan.stdout
    assert "table Tag: created" in plan.stdout, plan.stdout
    # The folder itself was not migrated: the server's schema still reads it, and so would a
    # second check.
    again = run_microlith("check", changed, "--against", server.data_dir)
    assert "table Note: attribute text indexed" in again.stdout
    assert run_microlith("query", app, "--data-dir", server.data_dir, "Note/n1").returncode == 0

    breaking = app.parent / "breaking-app"
    shutil.copytree(app, breaking)
    (breaking / "schema.graphql").write_text(SCHEMA.replace("text: String", "text: Int"))
    stop = run_microlith("check", breaking, "--against", server.data_dir)
    assert stop.returncode != 0 and "a start would stop" in stop.stderr and "text" in stop.stderr, stop.stderr

    empty = run_microlith("check", app, "--against", server.data_dir.parent / "empty")
    assert empty.returncode == 0 and "no database yet" in empty.stdout
