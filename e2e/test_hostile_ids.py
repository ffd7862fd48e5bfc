"""Hostile ids and numbers (issue: a NUL byte in an id reached another record).

Every door takes one canonical key form: no control characters, no undecodable percent-escapes.
A key outside it is a 400 naming the problem and never touches another record; integers past
64 bits are refused rather than rounded. The property test throws random byte strings at the
REST door and reads every accepted id back."""

from __future__ import annotations

import json
import random
import urllib.parse

import pytest

from microlith_e2e import assert_problem

SCHEMA = """
type Todo @table @export {
    id: ID @primaryKey
    title: String @indexed
    n: Int
    tags: [String] @indexed
}
"""


@pytest.fixture(scope="module")
def server(module_factory):
    return module_factory.server(module_factory.app(SCHEMA))


def test_nul_in_id_is_refused_and_reaches_no_record(server):
    assert server.put("/Todo/victim", json={"title": "mine"}).status_code in (200, 201)
    assert server.put("/Todo/keepme", json={"title": "keep"}).status_code in (200, 201)
    body = assert_problem(server.put("/Todo/victim%00x", json={"title": "evil"}), 400, "control characters", "U+0000")
    assert body.get("code") == "invalidID"
    assert_problem(server.delete("/Todo/keepme%00anything"), 400, "U+0000")
    assert_problem(server.get("/Todo/victim%00x"), 400, "U+0000")
    assert_problem(server.patch("/Todo/victim%00", json={"title": "evil"}), 400, "U+0000")
    # Neither the store nor the cache saw a write.
    assert server.get("/Todo/victim").json()["title"] == "mine"
    assert server.get("/Todo/keepme").json()["title"] == "keep"
    ids = set(server.ids("Todo"))
    assert {"keepme", "victim"} <= ids and not any("\x00" in i for i in ids), ids


@pytest.mark.parametrize("escape", ["%01", "%1F", "%7F", "%C2%85", "%0A", "%0D", "%09"])
def test_other_control_characters_are_refused(server, escape):
    assert_problem(server.put(f"/Todo/a{escape}b", json={"title": "x"}), 400, "control characters")


def test_undecodable_escapes_are_refused_not_kept_literally(server):
    assert_problem(server.put("/Todo/%FFz", json={"title": "x"}), 400, "UTF-8")
    assert_problem(server.put("/Todo/%zz", json={"title": "x"}), 400, "percent-escape")
    assert_problem(server.put("/Todo/abc%4", json={"title": "x"}), 400, "percent-escape")
    # The literal text is its own, different record.
    assert server.put("/Todo/%25FFz", json={"title": "literal"}).status_code == 201
    assert server.get("/Todo/%25FFz").json()["id"] == "%FFz"
    assert_problem(server.get("/Todo/%FFz"), 400, "UTF-8")


def test_ids_in_bodies_follow_the_same_rule(server):
    assert_problem(server.post("/Todo/", json={"id": "a\u0000b", "title": "x"}), 400, "id")
    assert_problem(server.post("/Todo/", json={"id": "a\u001bb", "title": "x"}), 400, "id")
    assert server.post("/Todo/", json={"id": "ok-id", "title": "x"}).status_code == 201


def test_nul_in_an_indexed_value_is_refused(server):
    assert_problem(server.put("/Todo/idx1", json={"title": "a\u0000b"}), 400, "NUL")
    assert_problem(server.put("/Todo/idx2", json={"tags": ["ok", "a\u0000b"]}), 400, "NUL")
    # Unindexed attributes may hold any text; it round-trips exactly.
    assert server.put("/Todo/idx3", json={"note": "a\u0000b"}).status_code == 201
    assert server.get("/Todo/idx3").json()["note"] == "a\u0000b"


def test_nul_in_a_query_is_refused(server):
    server.put("/Todo/qa", json={"title": "a"})
    assert_problem(server.get("/Todo/?title=a%00b"), 400, "NUL")
    assert_problem(server.delete("/Todo/?title=a%00b"), 400, "NUL")
    assert server.get("/Todo/qa").status_code == 200


def test_integers_past_64_bits_are_refused_not_rounded(server):
    body = assert_problem(server.put("/Todo/big", data=b'{"title":"x","big":1000000000000000000000000000000}',
                                     headers={"Content-Type": "application/json"}), 400, "64-bit")
    assert "offset" in body
    assert server.get("/Todo/big").status_code == 404
    # The extremes of int64 are kept exactly; an exponent asks for a double.
    raw = b'{"title":"x","max":9223372036854775807,"min":-9223372036854775808,"d":1e30}'
    assert server.put("/Todo/edges", data=raw, headers={"Content-Type": "application/json"}).status_code == 201
    got = json.loads(server.get("/Todo/edges").text)
    assert got["max"] == 9223372036854775807 and got["min"] == -9223372036854775808 and got["d"] == 1e30


def test_random_ids_never_reach_another_record(server):
    """Property: for random byte strings as ids (percent-encoded, so every byte reaches the
    server), a write is either refused with 400 or creates exactly its own record; reading every
    accepted id back returns the value written under it."""
    rng = random.Random(0x5EED)
    # Half the ids are built from awkward but valid characters, half from arbitrary bytes
    # (control characters, lone continuation bytes, overlongs, invalid UTF-8).
    valid = [" ", "%", "/", "?", "#", "+", "&", "=", ".", "..", "\\", "é", "€", "𝄞", "\u200b", "\ufeff", "a", "Z", "9", "\u00a0"]
    specials = [0, 1, 9, 10, 13, 31, 127, 128, 133, 159, 192, 193, 237, 244, 255]
    accepted: dict[str, int] = {}
    for i in range(400):
        length = rng.randint(1, 6)
        if i % 2:
            raw = "".join(rng.choice(valid) for _ in range(length)).encode()
        else:
            raw = bytes(rng.choice(specials) if rng.random() < 0.5 else rng.randint(0, 255) for _ in range(length))
        path = "/Todo/p-" + urllib.parse.quote(raw, safe="")
        r = server.put(path, json={"n": i})
        if r.status_code in (200, 201):
            key = "p-" + raw.decode("utf-8")
            accepted[key] = i
        else:
            assert r.status_code == 400, (raw, r.status_code, r.text)
            assert r.json().get("code") in ("invalidID", None) or "key" in r.json()["detail"]
    assert len(accepted) > 50, "too few ids were valid for the property to mean anything"
    for key, n in accepted.items():
        r = server.get("/Todo/" + urllib.parse.quote(key, safe=""))
        assert r.status_code == 200 and r.json()["id"] == key and r.json()["n"] == n, (key, r.text)
    stored = {k for k in server.ids("Todo", "id=sw=p-&limit(10000)")}
    assert stored == set(accepted), stored ^ set(accepted)
