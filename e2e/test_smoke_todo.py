"""Smoke test on examples/todo: the README's curl flow, then a restart on the same data."""

from __future__ import annotations

import requests

from microlith_e2e import REPO

TODO_APP = REPO / "examples" / "todo"


def test_readme_flow_and_restart(factory):
    server = factory.server(TODO_APP)
    base = server.base_url

    # curl -X PUT localhost:9926/Todo/1 -d '{"title":"buy milk","done":false,"tags":["home"]}'
    # (curl labels the body application/x-www-form-urlencoded; it is read as JSON)
    r = requests.put(
        f"{base}/Todo/1",
        data='{"title":"buy milk","done":false,"tags":["home"]}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=15,
    )
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == "/Todo/1"
    created = r.json()
    assert created["id"] == "1" and created["title"] == "buy milk" and created["done"] is False
    assert created["tags"] == ["home"]
    assert isinstance(created["createdAt"], int) and created["updatedAt"] == created["createdAt"]
    etag = r.headers["ETag"]

    # curl 'localhost:9926/Todo/?done=false&sort(-createdAt)&limit(10)'
    r = requests.get(f"{base}/Todo/?done=false&sort(-createdAt)&limit(10)", timeout=15)
    assert r.status_code == 200, r.text
    todos = r.json()
    assert [t["id"] for t in todos][0] == "1"
    assert {t["id"] for t in todos} == {"1", "welcome", "schema"}  # the two seeded ones too
    assert all(t["done"] is False for t in todos)
    assert [t["createdAt"] for t in todos] == sorted((t["createdAt"] for t in todos), reverse=True)

    # curl -i localhost:9926/Todo/1   (ETag; repeat with If-None-Match → 304)
    r = requests.get(f"{base}/Todo/1", timeout=15)
    assert r.status_code == 200 and r.headers["ETag"] == etag and r.json() == created
    r = requests.get(f"{base}/Todo/1", headers={"If-None-Match": etag}, timeout=15)
    assert r.status_code == 304 and r.content == b""

    # The seeded people and the relationship between the tables.
    assert requests.get(f"{base}/People/ada", timeout=15).json()["name"] == "Ada Lovelace"
    # (sent raw: requests would percent-encode the braces, which then count as literal text)
    rows = server.query("Todo", "id=welcome&select(title,owner{name})")
    assert rows == [{"title": "Read the README", "owner": {"name": "Ada Lovelace"}}]
    # curl 'localhost:9926/Todo/?tags=home&select(title,owner{name})' (curl -g keeps the braces)
    assert server.query("Todo", "tags=home&select(title,owner{name})") == [{"title": "buy milk", "owner": None}]
    # The web/ page.
    r = requests.get(f"{base}/", timeout=15)
    assert r.status_code == 200 and "<h1>Todo</h1>" in r.text

    # Restart on the same data folder: everything is still there, nothing seeded twice.
    server.restart()
    base = server.base_url
    r = requests.get(f"{base}/Todo/1", timeout=15)
    assert r.status_code == 200
    assert r.json() == created
    assert r.headers["ETag"] == etag
    r = requests.get(f"{base}/Todo/?done=false&sort(-createdAt)&limit(10)", timeout=15)
    assert r.json() == todos
    assert len(requests.get(f"{base}/People/", timeout=15).json()) == 2

    # Mark it done; the filtered list no longer shows it.
    r = requests.patch(f"{base}/Todo/1", json={"done": True}, timeout=15)
    assert r.status_code == 200 and r.json()["done"] is True
    r = requests.get(f"{base}/Todo/?done=false&sort(-createdAt)&limit(10)", timeout=15)
    assert [t["id"] for t in r.json()] == [t["id"] for t in todos if t["id"] != "1"]
