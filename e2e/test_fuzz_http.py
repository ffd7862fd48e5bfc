"""Seeded fuzzing over HTTP: mutated REST query strings and mutated JSON bodies, sent to a live
server. Every answer is a success or a 4xx problem+json that says what is wrong (never a 5xx, never
a dropped connection), and the server keeps serving and keeps its data.

The Swift suites fuzz the parsers alone with many more inputs (QueryFuzzTests, JSONParserFuzzTests;
`Benchmarks/fuzz/run` for a million each); this test checks the same inputs through every layer a
request crosses (HTTP parsing, routing, the table endpoint, the store)."""

from __future__ import annotations

import json
import random

import pytest

SCHEMA = """
type Item @table @export {
    id: ID @primaryKey
    n: Int @indexed
    f: Float
    s: String @indexed
    b: Boolean @indexed
    d: Date @indexed
    tags: [String] @indexed
    ownerId: ID @indexed
    owner: Person @relationship(from: ownerId)
}

type Person @table @export {
    id: ID @primaryKey
    name: String @indexed
    items: [Item] @relationship(to: ownerId)
}
"""

PEOPLE = [{"id": f"p{i}", "name": name} for i, name in enumerate(["Ann", "Bob", "Anton", "Zoë"])]
ITEMS = [
    {"id": f"i{i}", "n": i % 13, "f": i / 4, "s": ["alpha", "beta", "café", "x y"][i % 4], "b": i % 3 == 0,
     "d": f"2024-0{1 + i % 9}-1{i % 10}T00:00:00.000Z", "tags": [["red", "green"][i % 2], f"t{i % 5}"], "ownerId": f"p{i % 5}"}
    for i in range(40)
]

QUERY_SEEDS = [
    "n=gt=3&sort(-n)&limit(5)",
    "[s=alpha|s=beta]&b=true&select(id,s,owner{name})",
    "tags=red&d=ge=date:2024-01-01T00:00:00Z&sort(+d,-id)&limit(2,7)",
    "ownerId=p1&owner.name=sw=An&select(id,owner{name,items{id}})",
    "f=lt=number:2.5&s!=x%20y&sort(+f)",
    "(n=1|n=2)&(s=ct=a|s=sw=z)&limit(0)",
    "s=caf%C3%A9&b=boolean:false&n=ge=0",
    "",
]
QUERY_NOISE = ["[", "]", "(", ")", "{", "}", "&", "|", "=", "!", ",", ".", "+", "-", ":", "%", "%00", "%FF", "%2", "%C3",
               "=gt=", "=ne=", "date:", "number:", "sort(", "limit(", "select(", "owner.", "é", "9999999999999999999999", "?", "/"]

BODY_SEEDS = [
    json.dumps({"n": 3, "f": 1.5, "s": "alpha", "b": True, "d": "2024-05-01T10:00:00.000Z", "tags": ["a", "b"], "ownerId": "p1"}),
    json.dumps({"s": "é€𝄞\u0000", "tags": [], "n": -9223372036854775808}),
    '{"n": 1e400, "f": -0.0, "s": "\\ud834\\udd1e"}',
    '{"nested": {"deep": [[[{}]]]}, "n": 12345678901234567890}',
    json.dumps({"s": "beta", "tags": ["red"], "d": "2024-02-29T23:59:59.999Z"}),
    '{"b": false, "f": 2.5e-3, "ownerId": "p2", "note": "\\u00e9 \\n"}',
]
BODY_NOISE = list(b'{}[]",:\\-+.eE0123456789 tfnu') + [0x00, 0x0A, 0x80, 0xC3, 0xFF]


def mutate_query(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(5)
        if kind == 0:
            chars = chars[: rng.randint(0, len(chars))]
        elif kind == 1 and chars:
            at = rng.randrange(len(chars))
            chars[at: at + 1] = list(rng.choice(QUERY_NOISE))
        elif kind == 2:
            at = rng.randint(0, len(chars))
            chars[at:at] = list(rng.choice(QUERY_NOISE))
        elif kind == 3 and chars:
            at = rng.randrange(len(chars))
            del chars[at: at + rng.randint(1, 5)]
        else:
            chars += list(rng.choice(["&", "|", ""]) + rng.choice(QUERY_SEEDS))
    return "".join(chars)


def request_target(text: str) -> str:
    """The query as it goes on the request line: bytes outside printable ASCII, spaces and '#'
    percent-encoded (a client could not send them raw); everything else, '%' included, as is."""
    out = []
    for byte in text.encode():
        if 0x21 <= byte <= 0x7E and byte != ord("#"):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def mutate_body(rng: random.Random, text: str) -> bytes:
    data = bytearray(text.encode())
    for _ in range(rng.randint(0, 2)):
        kind = rng.randrange(5)
        if kind == 0:
            del data[rng.randint(0, len(data)):]
        elif kind == 1 and data:
            data[rng.randrange(len(data))] = rng.choice(BODY_NOISE) if rng.random() < 0.5 else rng.randrange(256)
        elif kind == 2:
            at = rng.randint(0, len(data))
            data[at:at] = bytes(rng.choice(BODY_NOISE) for _ in range(rng.randint(1, 4)))
        elif kind == 3 and data:
            at = rng.randrange(len(data))
            del data[at: at + rng.randint(1, 6)]
        else:
            at = rng.randint(0, len(data))
            data[at:at] = data[at: at + rng.randint(1, 3)] * rng.choice([2, 40, 300])
    return bytes(data)


@pytest.fixture(scope="module")
def server(module_factory):
    app = module_factory.app(SCHEMA, data={"Person": PEOPLE, "Item": ITEMS})
    return module_factory.server(app)


def check_answer(r, what: str):
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400:
        assert r.headers.get("Content-Type", "").startswith("application/problem+json"), f"{what}: {r.status_code} {r.text[:300]}"
        body = r.json()
        assert body.get("status") == r.status_code and body.get("detail"), f"{what}: {body}"


def test_mutated_queries_get_answers_or_clear_4xx(server):
    rng = random.Random(0x51554552)
    statuses = {}
    for _ in range(1500):
        target = request_target(mutate_query(rng, rng.choice(QUERY_SEEDS)))
        r = server.get(f"/Item/?{target}")
        check_answer(r, f"GET /Item/?{target}")
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    assert statuses.get(200, 0) > 50 and statuses.get(400, 0) > 300, statuses
    assert server.get("/health").status_code == 200
    assert len(server.query("Item", "limit(100)")) == len(ITEMS)


def test_mutated_bodies_are_stored_or_refused_with_a_clear_4xx(server):
    rng = random.Random(0x4A534F4E)
    stored = {}
    statuses = {}
    for i in range(1200):
        body = mutate_body(rng, rng.choice(BODY_SEEDS))
        method = rng.choice(["PUT", "POST", "PATCH"])
        path = f"/Item/fz{i}" if method != "POST" else "/Item/"
        if method == "PATCH":
            path = f"/Item/i{rng.randrange(len(ITEMS))}"
        r = server.request(method, path, data=body, headers={"Content-Type": "application/json"})
        check_answer(r, f"{method} {path} {body[:120]!r}")
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if method == "PUT" and r.status_code in (200, 201, 204):
            stored[f"fz{i}"] = body
    assert statuses.get(400, 0) > 300 and sum(v for k, v in statuses.items() if k < 300) > 30, statuses
    # What was acknowledged is there, as sent (parsed the way Python parses it, where Python can).
    for key, body in list(stored.items())[:100]:
        r = server.get(f"/Item/{key}")
        assert r.status_code == 200, f"{key}: {r.status_code}"
        try:
            sent = json.loads(body)
        except ValueError:
            continue
        got = r.json()
        for name, value in sent.items():
            if isinstance(value, (str, bool)) or value is None:
                assert got.get(name) == value, f"{key}.{name}: sent {value!r}, stored {got.get(name)!r}"
    assert server.get("/health").status_code == 200
