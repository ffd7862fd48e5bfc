"""Online backup and restore (`microlith backup`, `POST /_backup`, `microlith restore`) and a
table's export and import as JSON lines, with real processes: a backup taken during a stream of
acknowledged writes holds every write acknowledged before it began; a restore refuses a live data
folder, a damaged backup, and a folder that holds databases unless told to replace them."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import pytest

from microlith_e2e import assert_problem, run_microlith

SCHEMA = """
type Note @table @export {
    id: ID @primaryKey
    text: String
    n: Int @indexed
}

type Event @table(database: "events") @export {
    id: ID @primaryKey
    kind: String
}
"""

ADMIN_ENV = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root-123"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root-123").decode()}


def start(factory, data_dir=None, app=None):
    app = app or factory.app(SCHEMA)
    return factory.server(app, data_dir, env=ADMIN_ENV)


class Writers:
    """Threads that PUT notes as fast as the server answers, recording when each was acknowledged.

    Each thread writes its own new notes (`w<t>-<i>`) and overwrites one shared-per-thread note
    (`hot<t>`) with a rising `n`, so a backup must hold both new records and the latest values."""

    def __init__(self, server, threads: int = 4):
        self.server = server
        self.acks: list[tuple[float, str, int]] = []  # (acknowledged at, id, n)
        self.sent: dict[str, set[int]] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True) for t in range(threads)]

    def run(self, t: int):
        i = 0
        while not self.stop.is_set():
            i += 1
            for key in (f"w{t}-{i}", f"hot{t}"):
                with self.lock:
                    self.sent.setdefault(key, set()).add(i)
                r = self.server.put(f"/Note/{key}", json={"id": key, "text": f"value {i}", "n": i})
                if r.status_code not in (200, 201, 204):
                    self.errors.append(f"PUT {key}: {r.status_code} {r.text[:200]}")
                    return
                with self.lock:
                    self.acks.append((time.monotonic(), key, i))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not self.errors, self.errors[:3]

    def acknowledged_before(self, moment: float) -> dict[str, int]:
        """Per note, the highest `n` acknowledged before `moment`."""
        latest: dict[str, int] = {}
        with self.lock:
            for at, key, n in self.acks:
                if at < moment:
                    latest[key] = max(latest.get(key, 0), n)
        return latest


def notes_of(server) -> dict[str, int]:
    """Every note the server holds: id → n."""
    r = server.get("/Note/?select(id,n)&limit(10000)")
    assert r.status_code == 200, r.text
    assert len(r.json()) < 10000, "more notes than one query returns"
    return {row["id"]: row["n"] for row in r.json()}


def check_backup_holds(restored: dict[str, int], writers: Writers, began: float):
    wanted = writers.acknowledged_before(began)
    assert len(wanted) > 50, f"too few writes before the backup to test anything ({len(wanted)})"
    missing = sorted(key for key in wanted if key not in restored)
    assert not missing, f"{len(missing)} notes acknowledged before the backup began are not in it: {missing[:5]}"
    older = sorted(key for key, n in wanted.items() if restored[key] < n)
    assert not older, f"notes older in the backup than acknowledged before it began: {[(k, restored[k], wanted[k]) for k in older[:5]]}"
    # Nothing in the backup was invented: every value was sent by a writer.
    invented = sorted(key for key, n in restored.items() if key.startswith(("w", "hot")) and n not in writers.sent.get(key, set()))
    assert not invented, invented[:5]


@pytest.mark.parametrize("how", ["command", "endpoint"])
def test_a_backup_taken_during_acknowledged_writes_holds_every_write_acknowledged_before_it_began(factory, tmp_path, how):
    server = start(factory)
    assert server.put("/Event/e1", json={"id": "e1", "kind": "start"}).status_code in (200, 201)
    backup = tmp_path / "backup"
    with Writers(server) as writers:
        time.sleep(1.0)
        began = time.monotonic()
        if how == "command":
            result = run_microlith("backup", "--data-dir", server.data_dir, "--to", backup, timeout=60)
            assert result.returncode == 0, result.stderr
            assert f"backup in {backup}" in result.stdout
        else:
            r = server.post("/_backup?name=during-writes", headers=ADMIN)
            assert r.status_code == 201, r.text
            body = r.json()
            backup = Path(body["path"])
            if not backup.is_absolute():
                backup = server.app_dir / backup
            assert body["name"] == "during-writes"
        time.sleep(0.5)
    assert not Path(str(backup) + ".partial").exists()
    manifest = json.loads((backup / "backup.json").read_text())
    assert sorted(d["name"] for d in manifest["databases"]) == ["data", "events"]
    assert {d["file"] for d in manifest["databases"]} == {"data.sqlite", "events.sqlite"}
    events = next(d for d in manifest["databases"] if d["name"] == "events")
    assert events["tables"] == {"Event": 1}
    server.stop()

    target = tmp_path / "restored"
    result = run_microlith("restore", backup, "--data-dir", target)
    assert result.returncode == 0, result.stderr
    assert "restored" in result.stdout
    restored_server = start(factory, target, app=server.app_dir)
    restored = notes_of(restored_server)
    data = next(d for d in manifest["databases"] if d["name"] == "data")
    assert data["tables"]["Note"] == len(restored), (data["tables"], len(restored))
    check_backup_holds(restored, writers, began)
    assert restored_server.get("/Event/e1").json()["kind"] == "start"


def backed_up(factory, tmp_path, before: str, after: str):
    """A server with note `before`, backed up, then given note `after`; returns (server, backup folder)."""
    server = start(factory)
    assert server.put(f"/Note/{before}", json={"id": before, "n": 1}).status_code in (200, 201)
    backup = tmp_path / "b"
    assert run_microlith("backup", "--data-dir", server.data_dir, "--to", backup).returncode == 0
    assert server.put(f"/Note/{after}", json={"id": after, "n": 2}).status_code in (200, 201)
    return server, backup


def test_restore_refuses_a_data_folder_a_server_is_using(factory, tmp_path):
    server, backup = backed_up(factory, tmp_path, "a", "b")

    result = run_microlith("restore", backup, "--data-dir", server.data_dir, "--replace")
    assert result.returncode != 0
    assert "is in use" in result.stderr and "stop it first" in result.stderr, result.stderr
    # Nothing was touched: the server still has both notes and goes on writing.
    assert sorted(notes_of(server)) == ["a", "b"]
    assert server.put("/Note/c", json={"id": "c", "n": 3}).status_code in (200, 201)
    assert not list(Path(server.data_dir).glob("replaced-*"))


def test_restore_over_databases_needs_replace_and_moves_them_aside(factory, tmp_path):
    server, backup = backed_up(factory, tmp_path, "kept", "later")
    server.stop()

    refused = run_microlith("restore", backup, "--data-dir", server.data_dir)
    assert refused.returncode != 0
    assert "holds databases already" in refused.stderr and "--replace" in refused.stderr, refused.stderr

    done = run_microlith("restore", backup, "--data-dir", server.data_dir, "--replace")
    assert done.returncode == 0, done.stderr
    aside = list(Path(server.data_dir).glob("replaced-*"))
    assert len(aside) == 1 and (aside[0] / "data.sqlite").exists(), aside
    assert f"the databases that were there are in {aside[0]}" in done.stdout
    server.start()
    assert sorted(notes_of(server)) == ["kept"]


def test_restore_refuses_a_damaged_or_unfinished_backup(factory, tmp_path):
    server = start(factory)
    assert server.put("/Note/a", json={"id": "a", "n": 1}).status_code in (200, 201)
    backup = tmp_path / "b"
    assert run_microlith("backup", "--data-dir", server.data_dir, "--to", backup).returncode == 0
    server.stop()
    target = tmp_path / "target"

    # A second backup to the same folder is refused.
    again = run_microlith("backup", "--data-dir", server.data_dir, "--to", backup)
    assert again.returncode != 0 and "exists already" in again.stderr, again.stderr

    manifest_path = backup / "backup.json"
    manifest = json.loads(manifest_path.read_text())

    # A database file cut short.
    data = backup / "data.sqlite"
    original = data.read_bytes()
    data.write_bytes(original[: len(original) // 2])
    result = run_microlith("restore", backup, "--data-dir", target)
    assert result.returncode != 0 and "cut short" in result.stderr, result.stderr
    # Damaged pages of the recorded size.
    damaged = bytearray(original)
    damaged[4096:8192] = b"\xff" * 4096
    data.write_bytes(bytes(damaged))
    result = run_microlith("restore", backup, "--data-dir", target)
    assert result.returncode != 0 and ("damaged" in result.stderr or "not a readable database" in result.stderr), result.stderr
    data.write_bytes(original)

    # A manifest naming a file outside the folder.
    hostile = dict(manifest, databases=[dict(manifest["databases"][0], name="../x", file="../x.sqlite")])
    manifest_path.write_text(json.dumps(hostile))
    result = run_microlith("restore", backup, "--data-dir", target)
    assert result.returncode != 0 and "not a database of a data folder" in result.stderr, result.stderr
    # No manifest: not a finished backup.
    manifest_path.unlink()
    result = run_microlith("restore", backup, "--data-dir", target)
    assert result.returncode != 0 and "not a finished backup" in result.stderr, result.stderr
    assert not list(target.glob("*.sqlite"))

    manifest_path.write_text(json.dumps(manifest))
    result = run_microlith("restore", backup, "--data-dir", target)
    assert result.returncode == 0, result.stderr


def test_the_backup_endpoint_needs_a_super_user_and_a_safe_new_name(factory):
    server = start(factory)
    assert_problem(server.post("/_backup"), 401, "take a backup")
    assert_problem(server.get("/_backup"), 401, "list the backups")
    for name in ("../up", ".hidden", "a/b", "x.partial", "a" * 101):
        assert_problem(server.post(f"/_backup?name={name}", headers=ADMIN), 400, "name must be")
    assert server.post("/_backup?name=first", headers=ADMIN).status_code == 201
    assert_problem(server.post("/_backup?name=first", headers=ADMIN), 409, "exists already")
    assert server.post("/_backup", headers=ADMIN).status_code == 201
    listing = server.get("/_backup", headers=ADMIN).json()
    names = [b["name"] for b in listing["backups"]]
    assert "first" in names and len(names) == 2, names
    assert all(b["databases"] for b in listing["backups"])


def test_a_table_goes_out_and_back_in_as_json_lines(factory, tmp_path):
    app = factory.app(SCHEMA)
    server = start(factory, app=app)
    for i in range(1, 251):
        assert server.put(f"/Note/n{i:03}", json={"id": f"n{i:03}", "text": f"line\nbreak {i}", "n": i}).status_code in (200, 201)
    out = tmp_path / "notes.jsonl"
    # Export works beside a running server.
    result = run_microlith("export", app, "--data-dir", server.data_dir, "Note", "--to", out)
    assert result.returncode == 0, result.stderr
    assert "exported 250 records of Note" in result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 250 and [json.loads(line)["id"] for line in lines] == [f"n{i:03}" for i in range(1, 251)]

    # Import does not: the server's cache would not see it.
    refused = run_microlith("import", app, "--data-dir", server.data_dir, "Note", out)
    assert refused.returncode != 0 and "is in use" in refused.stderr and "PUT them over HTTP" in refused.stderr, refused.stderr
    server.stop()

    fresh = tmp_path / "fresh"
    result = run_microlith("import", app, "--data-dir", fresh, "Note", out)
    assert result.returncode == 0, result.stderr
    assert "imported 250 records into Note" in result.stdout
    copy = start(factory, fresh, app=app)
    assert copy.get("/Note/n007").json()["text"] == "line\nbreak 7"
    assert len(notes_of(copy)) == 250
    copy.stop()

    # A bad line names itself, and nothing of the file is imported.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "ok1", "n": 1}\n\n{"id": "bad", "n": "seven"}\n')
    result = run_microlith("import", app, "--data-dir", fresh, "Note", bad)
    assert result.returncode != 0 and "line 3" in result.stderr and "nothing was imported" in result.stderr, result.stderr
    bad.write_text('{"id": "ok1", "n": 1}\n[1, 2]\n')
    result = run_microlith("import", app, "--data-dir", fresh, "Note", bad)
    assert result.returncode != 0 and "bad.jsonl:2" in result.stderr, result.stderr
    unknown = run_microlith("export", app, "--data-dir", fresh, "Nope")
    assert unknown.returncode != 0 and "no table named 'Nope'" in unknown.stderr, unknown.stderr
    copy.start()
    assert "ok1" not in notes_of(copy)
