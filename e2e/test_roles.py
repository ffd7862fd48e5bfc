"""roles.yaml (the Roles article of the DocC catalogue): deny by default once an app declares roles, on every door;
`microlith check` validates the file; a mistake stops the start with file:line:column."""

from __future__ import annotations

import requests

from microlith_e2e import assert_problem, run_microlith, serve_must_fail

SCHEMA = """
type Item @table @export {
    id: ID @primaryKey
    name: String
}

type Secret @table @export {
    id: ID @primaryKey
    note: String
}
"""

ROLES = """
anonymous:
  tables:
    Item: [read, insert]
admin:
  super_user: true
"""


def app_with_roles(factory, roles: str = ROLES):
    app = factory.app(SCHEMA, data={"Item": [{"id": "a", "name": "first"}], "Secret": [{"id": "s", "note": "hidden"}]})
    (app / "roles.yaml").write_text(roles)
    return app


def test_the_anonymous_role_gets_what_roles_yaml_grants_and_nothing_else(factory):
    server = factory.server(app_with_roles(factory))
    assert server.get("/Item/a").json()["name"] == "first"
    assert server.get("/Item/a").status_code == 200, "again, from the cache"
    assert [r["id"] for r in server.get("/Item/").json()] == ["a"]
    assert server.put("/Item/b", json={"name": "new"}).status_code == 201, "insert is granted"
    assert_problem(server.put("/Item/b", json={"name": "changed"}), 403, "the anonymous role may not update Item records")
    assert_problem(server.patch("/Item/a", json={"name": "x"}), 403, "may not update Item")
    assert_problem(server.delete("/Item/a"), 403, "may not delete Item")
    assert_problem(server.delete("/Item/?name=first"), 403, "may not delete Item")
    assert server.get("/Item/b").json()["name"] == "new"
    # A table the role does not name is closed, on the fast path too.
    for path in ("/Secret/s", "/Secret/s", "/Secret/", "/Secret/s/"):
        r = server.get(path)
        assert_problem(r, 403, "the anonymous role may not read Secret records")
        assert r.json()["code"] == "forbidden"
    # Subscribing needs the subscribe permission.
    r = requests.get(server.url("/Item/"), headers={"Accept": "text/event-stream"}, stream=True, timeout=10)
    assert r.status_code == 403, r.status_code
    r.close()


def test_without_roles_yaml_every_table_is_open_and_the_start_says_so(factory):
    server = factory.server(factory.app(SCHEMA))
    assert server.put("/Secret/s", json={"note": "x"}).status_code == 201
    assert "no roles.yaml" in server.logs()


def test_check_prints_the_roles(factory):
    result = run_microlith("check", app_with_roles(factory))
    assert result.returncode == 0, result.stderr
    assert "role anonymous: Item: [read, insert]" in result.stdout
    assert "role admin: super user" in result.stdout


def test_a_bad_roles_file_stops_check_and_serve_with_its_location(factory):
    app = app_with_roles(factory, "anonymous:\n  tables:\n    Item: [read, wirte]\n")
    for result in (run_microlith("check", app), serve_must_fail(app, factory.data_dir())):
        assert result.returncode != 0
        assert f"{app / 'roles.yaml'}:3:18: unknown verb 'wirte' for role anonymous on Item" in result.stderr, result.stderr
    app = app_with_roles(factory, "anonymous:\n  tables:\n    Itme: read\n")
    for result in (run_microlith("check", app), serve_must_fail(app, factory.data_dir())):
        assert result.returncode != 0
        assert "role anonymous names table 'Itme', which the schema does not declare; tables: Item, Secret" in result.stderr
