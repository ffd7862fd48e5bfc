"""A generated permission matrix for roles.yaml (the Roles article of the DocC catalogue): every
principal × table × attribute × operation, over REST, Server-Sent Events, WebSocket and MQTT.

The tables, roles and users are Python data (TABLES, ROLES, USERS). The test writes roles.yaml from
that data, and derives what each cell must answer from the same data with a small pure model of the
documented rules (`expected`): deny by default; `"*"` for the tables a role does not name; `all` for
every verb; `hide` drops an attribute from every read, forbids filtering or sorting on it and writing
it; `readOnly` refuses a write naming it unless a PUT repeats the stored value, and a PUT leaving it
out keeps it; a user with several roles sees (writes) an attribute when any role granting the verb
does; a super user has no limits; MQTT refuses the topics of a table that hides attributes from the
subscriber; a refusal is 401 without credentials and 403 for a signed-in user (WebSocket close 4401 /
4403, MQTT 0x87). Nothing in this file lists the expected outcome of a cell by hand.

One server serves the whole matrix. The users sign in once each for a bearer token (REST, SSE, and
WebSocket through `access_token`); MQTT clients send the user name and password in CONNECT. Every
write cell has records of its own (seeded in data/*.json), and what a write left in the store is
checked through a super user.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest

from microlith_e2e import http_request
from mqtt_helpers import Broker, Paho

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect as ws_connect
except ImportError as e:  # a missing client is a failure of the set-up, never a skip
    raise ImportError("websockets is needed: pip install -r e2e/requirements.txt") from e

#: Every wait is bounded by this (seconds).
WAIT = 5.0
#: How long to watch for an MQTT message that must not arrive.
QUIET = 0.4

# -- the declaration: tables, roles, users ---------------------------------------------------------

#: Exported tables: attribute -> GraphQL type (every table's key is `id: ID`).
TABLES: dict[str, dict[str, str]] = {
    "Account": {"name": "String", "email": "String", "balance": "Int"},
    "Ledger": {"memo": "String", "amount": "Int"},
    "Vault": {"code": "String", "level": "Int"},
}

VERBS = ("read", "insert", "update", "delete", "subscribe", "publish")


@dataclass(frozen=True)
class Grant:
    """One table's grant in roles.yaml: verbs as written (may hold `all`), and attribute limits."""

    verbs: tuple[str, ...]
    hide: tuple[str, ...] = ()
    read_only: tuple[str, ...] = ()


#: role -> {"super_user": True} or {"tables": {table or "*": Grant}}.
ROLES: dict[str, dict] = {
    "anonymous": {"tables": {
        "Account": Grant(("read", "subscribe"), hide=("email",)),
        "Ledger": Grant(("read", "insert", "subscribe", "publish")),
    }},
    "teller": {"tables": {
        "Account": Grant(("read", "update", "subscribe", "publish"), read_only=("balance",)),
        "Ledger": Grant(("all",)),
        "Vault": Grant(("insert",)),
    }},
    "clerk": {"tables": {
        "Account": Grant(("read", "insert", "update", "delete", "subscribe"), hide=("email",)),
        # Subscribes and writes without reading, and may never see `code`.
        "Vault": Grant(("subscribe", "insert", "update"), hide=("code",)),
        "*": Grant(("read",)),
    }},
    "admin": {"super_user": True},
}

#: Users made over REST by the first super user (root, from the environment), with their roles.
USERS: dict[str, list[str]] = {"tess": ["teller"], "cole": ["clerk"], "mia": ["teller", "clerk"], "ada": ["admin"]}
PRINCIPALS = ("anonymous", *USERS)
ROOT, ROOT_PASSWORD = "root", "pw-root-matrix"


def password(user: str) -> str:
    return f"pw-{user}-matrix"


def schema_text() -> str:
    out = []
    for table, attributes in TABLES.items():
        lines = "\n".join(f"    {name}: {kind}" for name, kind in attributes.items())
        out.append(f"type {table} @table @export {{\n    id: ID @primaryKey\n{lines}\n}}\n")
    return "\n".join(out)


def roles_yaml() -> str:
    """roles.yaml written from ROLES: the short form for a grant without limits, the long one otherwise."""

    def flow(items) -> str:
        return "[" + ", ".join(items) + "]"

    lines = []
    for role, spec in ROLES.items():
        lines.append(f"{role}:")
        if spec.get("super_user"):
            lines.append("  super_user: true")
            continue
        lines.append("  tables:")
        for table, grant in spec["tables"].items():
            name = '"*"' if table == "*" else table
            if not grant.hide and not grant.read_only:
                lines.append(f"    {name}: {flow(grant.verbs)}")
                continue
            lines.append(f"    {name}:")
            lines.append(f"      verbs: {flow(grant.verbs)}")
            if grant.hide:
                lines.append(f"      hide: {flow(grant.hide)}")
            if grant.read_only:
                lines.append(f"      readOnly: {flow(grant.read_only)}")
    return "\n".join(lines) + "\n"


# -- the model: what the documented rules say --------------------------------------------------------


def roles_of(principal: str) -> list[str]:
    return ["anonymous"] if principal == "anonymous" else USERS[principal]


def is_super(role: str) -> bool:
    return role == "super_user" or bool(ROLES.get(role, {}).get("super_user"))


def role_verbs(role: str, table: str) -> set[str]:
    if is_super(role):
        return set(VERBS)
    grants = ROLES.get(role, {}).get("tables", {})
    grant = grants.get(table, grants.get("*"))
    if grant is None:
        return set()
    return set(VERBS) if "all" in grant.verbs else set(grant.verbs)


def role_limits(role: str, table: str) -> tuple[set[str], set[str]]:
    """(hide, readOnly) of `role` on `table`; `"*"` carries verbs only."""
    grant = ROLES.get(role, {}).get("tables", {}).get(table)
    return (set(grant.hide), set(grant.read_only)) if grant else (set(), set())


def allows(principal: str, verb: str, table: str) -> bool:
    return any(verb in role_verbs(r, table) for r in roles_of(principal))


def limited(principal: str, table: str, verb: str, pick) -> set[str]:
    """An attribute is limited when every role of the principal granting `verb` limits it."""
    result = None
    for role in roles_of(principal):
        if is_super(role):
            return set()
        if verb not in role_verbs(role, table):
            continue
        limit = pick(*role_limits(role, table))
        result = limit if result is None else result & limit
    return result or set()


def hidden(principal: str, table: str, verb: str = "read") -> set[str]:
    return limited(principal, table, verb, lambda hide, ro: hide)


def unwritable(principal: str, table: str, verb: str) -> set[str]:
    return limited(principal, table, verb, lambda hide, ro: hide | ro)


def answer_hidden(principal: str, table: str, verb: str) -> set[str]:
    """What a write's answer may not show: the record as the principal reads it; a principal that may
    not read the table still never sees what the role granting the write hides."""
    return hidden(principal, table) if allows(principal, "read", table) else hidden(principal, table, verb)


def who(principal: str) -> str:
    return "the anonymous role" if principal == "anonymous" else f"user {principal} (roles: "


@dataclass(frozen=True)
class Outcome:
    allowed: bool
    #: For a refusal: `detail` holds one of these ("… may not <action>").
    refusal: tuple[str, ...] = ()
    #: Whether the cell's attribute is in what comes back (a read, an event, a write's answer).
    shows: bool | None = None
    #: For a PUT leaving the attribute out: whether its stored value is kept.
    kept: bool | None = None


def deny(*actions: str) -> Outcome:
    return Outcome(False, tuple(f"may not {a}" for a in actions))


def verb_refusal(verb: str, table: str) -> str:
    return f"{verb} {'to ' if verb in ('subscribe', 'publish') else ''}{table} records"


def expected(principal: str, table: str, attr: str | None, op: str) -> Outcome:
    """What operation `op` by `principal` on `table` (naming `attr`) must answer, by the documented rules."""
    may = {v: allows(principal, v, table) for v in VERBS}
    v = lambda verb: verb_refusal(verb, table)  # noqa: E731
    write_attr = f"write {table}.{attr}"
    if op in ("rest_get", "rest_prefix", "rest_table"):
        return Outcome(True, shows=attr not in hidden(principal, table)) if may["read"] else deny(v("read"))
    if op in ("rest_filter", "rest_sort"):
        if not may["read"]:
            return deny(v("read"))
        if attr in hidden(principal, table):
            return deny(f"filter or sort {table} records by {attr}")
        return Outcome(True, shows=True)
    if op == "rest_delete_query":
        if not may["read"]:
            return deny(v("read"))
        if not may["delete"]:
            return deny(v("delete"))
        if attr in hidden(principal, table):
            return deny(f"filter or sort {table} records by {attr}")
        return Outcome(True)
    if op == "rest_post":
        if not may["insert"]:
            return deny(v("insert"))
        if attr in unwritable(principal, table, "insert"):
            return deny(write_attr)
        return Outcome(True, shows=attr not in answer_hidden(principal, table, "insert"))
    if op in ("rest_put_new", "mqtt_put_new"):
        if not may["insert"]:
            return deny(v("insert"), v("update"))
        if attr in unwritable(principal, table, "insert"):
            return deny(write_attr)
        return Outcome(True, shows=attr not in answer_hidden(principal, table, "insert"))
    if op in ("rest_put_change", "rest_patch", "mqtt_put_change"):
        if not may["update"]:
            return deny(v("update"))
        if attr in unwritable(principal, table, "update"):
            return deny(write_attr)
        return Outcome(True, shows=attr not in answer_hidden(principal, table, "update"))
    if op == "rest_put_same":
        # A GET, edit, PUT round trip repeats what the principal reads: a read-only value passes,
        # a hidden one is not writable at all (and must not be guessable).
        if not may["update"]:
            return deny(v("update"))
        if attr in unwritable(principal, table, "update") and attr in answer_hidden(principal, table, "update"):
            return deny(write_attr)
        return Outcome(True, shows=attr not in answer_hidden(principal, table, "update"))
    if op == "rest_put_keeps":
        if not may["update"]:
            return deny(v("update"))
        kept = attr in unwritable(principal, table, "update") | hidden(principal, table)
        return Outcome(True, shows=kept and attr not in answer_hidden(principal, table, "update"), kept=kept)
    if op in ("rest_delete", "mqtt_delete"):
        return Outcome(True) if may["delete"] else deny(v("delete"))
    if op in ("sse_record", "ws_record"):
        return Outcome(True, shows=attr not in hidden(principal, table, "subscribe")) if may["subscribe"] else deny(v("subscribe"))
    if op in ("sse_filter", "ws_filter"):
        # "A subscription follows the roles that grant subscribe": a standing query may not filter on
        # what those roles hide.
        if not may["subscribe"]:
            return deny(v("subscribe"))
        if attr in hidden(principal, table, "subscribe"):
            return deny(f"filter or sort {table} records by {attr}")
        return Outcome(True)
    if op == "ws_publish":
        if not may["subscribe"]:
            return deny(v("subscribe"))
        return Outcome(True) if may["publish"] else deny(v("publish"))
    if op in ("mqtt_subscribe", "mqtt_wildcard"):
        # One message for all subscribers of a topic: hidden attributes close the table's topics.
        return Outcome(may["subscribe"] and not hidden(principal, table, "subscribe"))
    if op == "mqtt_publish":
        return Outcome(True) if may["publish"] else deny(v("publish"))
    raise AssertionError(f"unknown operation {op}")


# -- the cells -----------------------------------------------------------------------------------

#: Operations naming one attribute, and operations on a table.
ATTRIBUTE_OPS = (
    "rest_get", "rest_prefix", "rest_table", "rest_filter", "rest_sort", "rest_post", "rest_put_new", "rest_put_change",
    "rest_put_same", "rest_put_keeps", "rest_patch", "rest_delete_query",
    "sse_record", "sse_filter", "ws_record", "ws_filter", "mqtt_put_new", "mqtt_put_change",
)
TABLE_OPS = ("rest_delete", "ws_publish", "mqtt_subscribe", "mqtt_publish", "mqtt_delete", "mqtt_wildcard")
#: Operations that write a record of their own, which is seeded (the others create one, or read the shared one).
OWN_RECORD = {"rest_put_change", "rest_put_same", "rest_put_keeps", "rest_patch", "rest_delete_query", "mqtt_put_change",
              "rest_delete", "mqtt_delete"}
#: The record every read, subscription and message goes to: its key holds a `/`, so it has a prefix.
SHARED = "pfx/seed"
WILD = "wild"


@dataclass(frozen=True)
class Cell:
    principal: str
    table: str
    attr: str | None
    op: str

    @property
    def key(self) -> str:
        """The record this cell writes (seeded when the operation needs it to exist)."""
        return f"{self.op}.{self.principal}.{self.attr or 'row'}"

    @property
    def name(self) -> str:
        return f"{self.op}-{self.principal}-{self.table}" + (f".{self.attr}" if self.attr else "")


CELLS = [Cell(p, t, a, op) for p in PRINCIPALS for t, attrs in TABLES.items() for a in attrs for op in ATTRIBUTE_OPS]
CELLS += [Cell(p, t, None, op) for p in PRINCIPALS for t in TABLES for op in TABLE_OPS]


def value_for(table: str, attr: str, n: int):
    """A value of `attr` unique within the table (filters and deletes by query match one record)."""
    kind = TABLES[table][attr]
    if kind == "Int":
        return n
    return f"e{n}@example.com" if attr == "email" else f"{attr}-{n}"


def seed_records() -> dict[str, list[dict]]:
    records: dict[str, list[dict]] = {t: [] for t in TABLES}
    n = 100
    keys = {(t, k) for t in TABLES for k in (SHARED, WILD)} | {(c.table, c.key) for c in CELLS if c.op in OWN_RECORD}
    for table, key in sorted(keys):
        record = {"id": key}
        for attr in TABLES[table]:
            n += 1
            record[attr] = value_for(table, attr, n)
        records[table].append(record)
    return records


SEEDS = seed_records()
SEED_BY_KEY = {(t, r["id"]): r for t, rs in SEEDS.items() for r in rs}
_written = iter(range(100_000, 10**9))


def new_value(table: str, attr: str):
    return value_for(table, attr, next(_written))


# -- the server ----------------------------------------------------------------------------------


def basic(user: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


@dataclass
class Matrix:
    server: object
    tokens: dict = field(default_factory=dict)
    mqtt: dict = field(default_factory=dict)
    wildcard: dict = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    def headers(self, principal: str) -> dict:
        return {} if principal == "anonymous" else {"Authorization": f"Bearer {self.tokens[principal]}"}

    def request(self, principal: str, method: str, path: str, **kw):
        return http_request(self.port, method, path, headers={**self.headers(principal), **kw.pop("headers", {})}, **kw)

    def stored(self, table: str, key: str) -> dict | None:
        """The record as the store holds it (read by a super user); None when there is none."""
        r = self.request(ROOT, "GET", path(table, key))
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r
        return r.json()

    def broker(self) -> Broker:
        return Broker("microlith", "127.0.0.1", self.server.mqtt_port, self.port, "/mqtt", self.server)

    def mqtt_client(self, principal: str) -> Paho:
        if principal not in self.mqtt:
            creds = {} if principal == "anonymous" else {"username": principal, "password": password(principal)}
            self.mqtt[principal] = Paho(self.broker(), "v5", client_id=f"matrix-{principal}-{uuid.uuid4().hex[:6]}", **creds)
        return self.mqtt[principal]


def path(table: str, key: str) -> str:
    return f"/{table}/" + quote(key, safe="/.@")


@pytest.fixture(scope="module")
def matrix(module_factory) -> Matrix:
    app = module_factory.app(schema_text(), data=SEEDS)
    (app / "roles.yaml").write_text(roles_yaml())
    server = module_factory.server(app, env={"MICROLITH_ADMIN_USER": ROOT, "MICROLITH_ADMIN_PASSWORD": ROOT_PASSWORD})
    assert server.mqtt_port, server.logs()
    m = Matrix(server)
    root = basic(ROOT, ROOT_PASSWORD)

    def add(user):
        r = server.post("/_users", json={"name": user, "password": password(user), "roles": USERS[user]}, headers=root)
        assert r.status_code == 201, r

    def token(user):
        secret = ROOT_PASSWORD if user == ROOT else password(user)
        r = server.post("/_auth/token", json={"username": user, "password": secret})
        assert r.status_code == 200, r
        return user, r.json()["access_token"]

    # Each sign-in pays the password hash: run them side by side.
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, USERS))
        m.tokens = dict(pool.map(token, [ROOT, *USERS]))
        list(pool.map(m.mqtt_client, PRINCIPALS))
    yield m
    for client in [*m.mqtt.values(), *m.wildcard.values()]:
        client.close()
    assert server.running, "microlith died during the matrix\n" + server.logs()


# -- doors ---------------------------------------------------------------------------------------


def refusal_status(principal: str) -> int:
    return 401 if principal == "anonymous" else 403


def assert_refused(cell: Cell, outcome: Outcome, status: int, body: dict, headers=None):
    """An HTTP refusal (or a WebSocket error event) of `cell`: 401/403, the code, who and what."""
    want = refusal_status(cell.principal)
    assert status == want, f"{cell.name}: expected {want}, got {status}: {body}"
    detail = body.get("detail", "")
    assert who(cell.principal) in detail, f"{cell.name}: {detail!r} does not name {who(cell.principal)!r}"
    assert any(fragment in detail for fragment in outcome.refusal), f"{cell.name}: {detail!r} says none of {outcome.refusal}"
    if headers is not None:
        assert body.get("code") == ("unauthorized" if want == 401 else "forbidden"), body
        if want == 401:
            assert (headers.get("WWW-Authenticate") or "").startswith("Basic "), f"{cell.name}: no Basic challenge"


def check_http(cell: Cell, outcome: Outcome, r, ok_status: int):
    if outcome.allowed:
        assert r.status_code == ok_status, f"{cell.name}: expected {ok_status}, got {r.status_code}: {r.text[:300]}"
    else:
        want = refusal_status(cell.principal)
        assert r.status_code == want, f"{cell.name}: expected {want} ({outcome.refusal[0]}), got {r.status_code}: {r.text[:300]}"
        assert r.headers.get("Content-Type", "").startswith("application/problem+json"), r
        assert_refused(cell, outcome, r.status_code, r.json(), r.headers)


def check_shows(cell: Cell, outcome: Outcome, record: dict, what: str):
    assert isinstance(record, dict), f"{cell.name}: {what} is not a record: {record!r}"
    assert (cell.attr in record) == outcome.shows, (
        f"{cell.name}: {cell.attr} {'missing from' if outcome.shows else 'shown in'} {what}: {record}")


def check_answer(cell: Cell, record: dict, verb: str, what: str):
    """A write's answer shows the record as the principal reads it: nothing it may not see, whichever attribute."""
    leaked = sorted(set(record) & answer_hidden(cell.principal, cell.table, verb))
    assert not leaked, f"{cell.name}: {what} shows {leaked}, hidden from {cell.principal}: {record}"


def shared(table: str) -> dict:
    return SEED_BY_KEY[(table, SHARED)]


def run_rest_read(m: Matrix, cell: Cell, outcome: Outcome):
    seed = shared(cell.table)
    op, table, attr = cell.op, cell.table, cell.attr
    if op == "rest_get":
        for _ in range(2):  # the second may come from the event-loop cache
            r = m.request(cell.principal, "GET", path(table, SHARED))
            check_http(cell, outcome, r, 200)
            if outcome.allowed:
                check_shows(cell, outcome, r.json(), "GET of the record")
                assert r.json() == {k: v for k, v in seed.items() if k not in hidden(cell.principal, table)}, r.json()
        return
    if op in ("rest_prefix", "rest_table"):
        url = f"/{table}/pfx/" if op == "rest_prefix" else f"/{table}/"
        r = m.request(cell.principal, "GET", url)
        check_http(cell, outcome, r, 200)
        if outcome.allowed:
            rows = r.json()
            assert isinstance(rows, list) and rows, r
            mine = [row for row in rows if row.get("id") == SHARED]
            assert len(mine) == 1, f"{cell.name}: {SHARED} not in {url}: {rows[:5]}"
            check_shows(cell, outcome, mine[0], f"GET {url}")
            if not outcome.shows:
                leaked = [row for row in rows if attr in row]
                assert not leaked, f"{cell.name}: {attr} shown in rows {leaked[:3]}"
        return
    if op == "rest_filter":
        url = f"/{table}/?{attr}=={quote(str(seed[attr]), safe='@.')}"
    else:
        url = f"/{table}/pfx/?sort(-{attr})"
    r = m.request(cell.principal, "GET", url)
    check_http(cell, outcome, r, 200)
    if outcome.allowed:
        rows = r.json()
        assert [row["id"] for row in rows] == [SHARED], f"{cell.name}: {url} -> {rows}"


def as_read(cell: Cell, record: dict) -> dict:
    """`record` as the cell's principal reads it (before an edit and a PUT)."""
    return {k: v for k, v in record.items() if k not in answer_hidden(cell.principal, cell.table, "update")}


def run_rest_write(m: Matrix, cell: Cell, outcome: Outcome):
    table, attr, key, op = cell.table, cell.attr, cell.key, cell.op
    before = SEED_BY_KEY.get((table, key))
    if op == "rest_post":
        value = new_value(table, attr)
        r = m.request(cell.principal, "POST", f"/{table}/", json={attr: value})
        check_http(cell, outcome, r, 201)
        if outcome.allowed:
            check_shows(cell, outcome, r.json(), "the POST's answer")
            check_answer(cell, r.json(), "insert", "the POST's answer")
            location = r.headers.get("Location")
            assert location and location.startswith(f"/{table}/"), r
            stored = m.request(ROOT, "GET", location).json()
            assert stored[attr] == value, stored
        else:
            found = m.request(ROOT, "GET", f"/{table}/?{attr}=={quote(str(value), safe='@.')}").json()
            assert found == [], f"{cell.name}: a refused POST stored {found}"
        return
    if op == "rest_put_new":
        value = new_value(table, attr)
        r = m.request(cell.principal, "PUT", path(table, key), json={attr: value})
        check_http(cell, outcome, r, 201)
        stored = m.stored(table, key)
        if outcome.allowed:
            check_shows(cell, outcome, r.json(), "the PUT's answer")
            check_answer(cell, r.json(), "insert", "the PUT's answer")
            assert stored == {"id": key, attr: value}, stored
        else:
            assert stored is None, f"{cell.name}: a refused PUT created {stored}"
        return
    if op == "rest_delete":
        r = m.request(cell.principal, "DELETE", path(table, key))
        check_http(cell, outcome, r, 204)
        assert (m.stored(table, key) is None) == outcome.allowed
        return
    if op == "rest_delete_query":
        r = m.request(cell.principal, "DELETE", f"/{table}/?{attr}=={quote(str(before[attr]), safe='@.')}")
        check_http(cell, outcome, r, 200)
        if outcome.allowed:
            assert r.json() == {"deleted": 1}, r
        assert (m.stored(table, key) is None) == outcome.allowed
        return
    # Writes of an existing record.
    if op == "rest_put_change":
        # The record as the principal reads it, edited: what it may not see is left out, and kept.
        value = new_value(table, attr)
        r = m.request(cell.principal, "PUT", path(table, key), json={**as_read(cell, before), attr: value})
        after = {**before, attr: value}
    elif op == "rest_put_same":
        r = m.request(cell.principal, "PUT", path(table, key), json={"id": key, attr: before[attr]})
        after = {"id": key, attr: before[attr]}
        after.update({a: before[a] for a in unwritable(cell.principal, table, "update") | hidden(cell.principal, table)})
    elif op == "rest_put_keeps":
        r = m.request(cell.principal, "PUT", path(table, key), json={"id": key})
        after = {"id": key}
        if outcome.kept:
            after[attr] = before[attr]
    else:  # rest_patch
        value = new_value(table, attr)
        r = m.request(cell.principal, "PATCH", path(table, key), json={attr: value})
        after = {**before, attr: value}
    check_http(cell, outcome, r, 200)
    stored = m.stored(table, key)
    if outcome.allowed:
        check_shows(cell, outcome, r.json(), f"the {r.method}'s answer")
        check_answer(cell, r.json(), "update", f"the {r.method}'s answer")
        if op == "rest_put_keeps":
            assert (attr in stored) == outcome.kept and stored.get(attr) == after.get(attr), (
                f"{cell.name}: {attr} {'not kept' if outcome.kept else 'kept'} by a PUT leaving it out: {stored}")
        elif op in ("rest_put_change", "rest_patch"):
            assert stored == after, f"{cell.name}: stored {stored}, wanted {after}"
        else:
            assert stored[attr] == after[attr], f"{cell.name}: stored {stored}, wanted {attr}={after[attr]!r}"
    else:
        assert stored == before, f"{cell.name}: a refused {r.method} changed the record: {stored} (was {before})"


# Server-Sent Events and WebSocket


def sse(m: Matrix, principal: str, url: str, wanted: int) -> tuple[int, dict, list]:
    """Opens an event stream; returns the status, the problem (when refused) and the first `wanted` events."""
    conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=WAIT)
    try:
        conn.putrequest("GET", url, skip_accept_encoding=True)
        for k, v in {"Accept": "text/event-stream", **m.headers(principal)}.items():
            conn.putheader(k, v)
        conn.endheaders()
        response = conn.getresponse()
        if response.status != 200:
            return response.status, {"headers": response.headers, **json.loads(response.read() or b"{}")}, []
        assert response.headers.get("Content-Type", "").startswith("text/event-stream"), response.headers
        events, kind, data = [], None, []
        while len(events) < wanted:
            line = response.readline().decode().rstrip("\r\n")
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line.split(":", 1)[1].strip())
            elif line == "" and data:
                event = json.loads("\n".join(data))
                assert event.get("type") == kind, (kind, event)
                events.append(event)
                kind, data = None, []
        return 200, {}, events
    finally:
        try:
            if conn.sock is not None:
                conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


def ws_url(m: Matrix, principal: str, url: str) -> str:
    if principal != "anonymous":
        url += ("&" if "?" in url else "?") + f"access_token={m.tokens[principal]}"
    return f"ws://127.0.0.1:{m.port}{url}"


def ws_refusal(ws) -> tuple[dict, int | None]:
    """The error event of a refused subscription and the close code that follows it."""
    event = json.loads(ws.recv(timeout=WAIT))
    if event.get("type") != "error":
        return event, None
    try:
        ws.recv(timeout=WAIT)
    except ConnectionClosed:
        pass
    return event, ws.close_code


def seen_by_subscriber(cell: Cell) -> dict:
    return {k: v for k, v in shared(cell.table).items() if k not in hidden(cell.principal, cell.table, "subscribe")}


def subscription_url(cell: Cell) -> str:
    if cell.op.endswith("_record"):
        return path(cell.table, SHARED)
    return f"/{cell.table}/?{cell.attr}=={quote(str(shared(cell.table)[cell.attr]), safe='@.')}"


def run_sse(m: Matrix, cell: Cell, outcome: Outcome):
    record = cell.op == "sse_record"
    status, problem, events = sse(m, cell.principal, subscription_url(cell), 2 if record else 1)
    if not outcome.allowed:
        assert status != 200, f"{cell.name}: expected a refusal ({outcome.refusal[0]}), got an event stream: {events}"
        assert_refused(cell, outcome, status, problem, problem["headers"])
        return
    assert status == 200, f"{cell.name}: expected an event stream, got {status}: {problem}"
    assert events[0]["type"] == "subscribed", events
    if record:
        assert events[1]["type"] == "current" and events[1]["id"] == SHARED, events
        check_shows(cell, outcome, events[1]["value"], "the current event")
        assert events[1]["value"] == seen_by_subscriber(cell), events[1]


def run_ws(m: Matrix, cell: Cell, outcome: Outcome):
    url = path(cell.table, SHARED) if cell.op == "ws_publish" else subscription_url(cell)
    with ws_connect(ws_url(m, cell.principal, url), open_timeout=WAIT, close_timeout=1) as ws:
        if not outcome.allowed and (cell.op != "ws_publish" or not allows(cell.principal, "subscribe", cell.table)):
            event, code = ws_refusal(ws)
            assert event.get("type") == "error", f"{cell.name}: expected a refusal ({outcome.refusal[0]}), got {event}"
            assert_refused(cell, outcome, event.get("status"), event)
            assert code == 4000 + refusal_status(cell.principal), f"{cell.name}: close code {code}"
            return
        first = json.loads(ws.recv(timeout=WAIT))
        assert first.get("type") == "subscribed", f"{cell.name}: {first}"
        if cell.op == "ws_filter":
            return
        current = json.loads(ws.recv(timeout=WAIT))
        assert current.get("type") == "current" and current["id"] == SHARED, current
        if cell.op == "ws_record":
            check_shows(cell, outcome, current["value"], "the current event")
            assert current["value"] == seen_by_subscriber(cell), current
            return
        marker = uuid.uuid4().hex
        ws.send(json.dumps({"type": "publish", "value": {"marker": marker}}))
        while True:
            event = json.loads(ws.recv(timeout=WAIT))
            if event.get("type") == "message" and event.get("value") == {"marker": marker}:
                assert outcome.allowed, f"{cell.name}: a refused publish was delivered: {event}"
                return
            if event.get("type") == "error":
                assert not outcome.allowed, f"{cell.name}: publish refused: {event}"
                assert_refused(cell, outcome, event.get("status"), event)
                return


# MQTT

SUBACK_REFUSED = 0x87
PUBACK_REFUSED = 0x87


def run_mqtt(m: Matrix, cell: Cell, outcome: Outcome):
    client = m.mqtt_client(cell.principal)
    table, key, attr = cell.table, cell.key, cell.attr
    if cell.op == "mqtt_subscribe":
        topic = f"{table}/{SHARED}"
        result, mid = client.client.subscribe(topic, qos=1)
        codes = [rc.value for rc in client._wait_ack(("sub", mid), f"SUBSCRIBE {topic}")]
        try:
            if not outcome.allowed:
                assert codes == [SUBACK_REFUSED], f"{cell.name}: SUBACK {codes}"
                return
            assert codes == [1], f"{cell.name}: SUBACK {codes}"
            message = client.expect_topic(topic)
            assert message.json() == shared(table), f"{cell.name}: {message.json()}"
        finally:
            client.client.unsubscribe(topic)
        return
    if cell.op == "mqtt_wildcard":
        run_mqtt_wildcard(m, cell, outcome)
        return
    if cell.op == "mqtt_publish":
        rc = client.publish(f"{table}/{SHARED}", json.dumps({"marker": uuid.uuid4().hex}), qos=1)
        assert rc.value == (0 if outcome.allowed else PUBACK_REFUSED), f"{cell.name}: PUBACK {rc}"
        return
    if cell.op == "mqtt_delete":
        rc = client.publish(f"{table}/{key}", b"", qos=1, retain=True)
        assert rc.value == (0 if outcome.allowed else PUBACK_REFUSED), f"{cell.name}: PUBACK {rc}"
        assert (m.stored(table, key) is None) == outcome.allowed
        return
    value = new_value(table, attr)
    before = SEED_BY_KEY.get((table, key))
    body = {attr: value} if before is None else {**as_read(cell, before), attr: value}
    rc = client.publish(f"{table}/{key}", json.dumps(body), qos=1, retain=True)
    assert rc.value == (0 if outcome.allowed else PUBACK_REFUSED), f"{cell.name}: PUBACK {rc}"
    stored = m.stored(table, key)
    if outcome.allowed:
        after = {"id": key, attr: value} if before is None else {**before, attr: value}
        assert stored == after, f"{cell.name}: stored {stored}, wanted {after}"
    else:
        assert stored == before, f"{cell.name}: a refused publish changed the record: {stored} (was {before})"


def run_mqtt_wildcard(m: Matrix, cell: Cell, outcome: Outcome):
    """A `#` subscription is granted to everyone; it carries a table's changes only to those admitted."""
    if cell.principal not in m.wildcard:
        creds = {} if cell.principal == "anonymous" else {"username": cell.principal, "password": password(cell.principal)}
        client = Paho(m.broker(), "v5", client_id=f"wild-{cell.principal}-{uuid.uuid4().hex[:6]}", **creds)
        m.wildcard[cell.principal] = client
        assert client.subscribe("#", qos=1) == [1]
    client = m.wildcard[cell.principal]
    topic = f"{cell.table}/{WILD}"
    marker = {"id": WILD, **{a: new_value(cell.table, a) for a in TABLES[cell.table]}}
    r = m.request(ROOT, "PUT", path(cell.table, WILD), json=marker)
    assert r.status_code == 200, r
    if outcome.allowed:
        client.expect(lambda msg: msg.topic == topic and msg.payload and msg.json() == marker, what=f"the change of {topic}")
    else:
        seen = [msg for msg in client.collect(QUIET) if msg.topic.startswith(f"{cell.table}/")]
        assert not seen, f"{cell.name}: '#' delivered {cell.table}'s changes: {seen[:3]}"


def run(m: Matrix, cell: Cell):
    outcome = expected(cell.principal, cell.table, cell.attr, cell.op)
    door = cell.op.split("_", 1)[0]
    if door == "rest":
        if cell.op in ("rest_get", "rest_prefix", "rest_table", "rest_filter", "rest_sort"):
            run_rest_read(m, cell, outcome)
        else:
            run_rest_write(m, cell, outcome)
    elif door == "sse":
        run_sse(m, cell, outcome)
    elif door == "ws":
        run_ws(m, cell, outcome)
    else:
        run_mqtt(m, cell, outcome)


@pytest.mark.parametrize("cell", [pytest.param(c, id=c.name) for c in CELLS])
def test_cell(matrix, cell):
    run(matrix, cell)


# -- the matrix's own footing ------------------------------------------------------------------------


def test_the_server_reads_roles_yaml_as_the_model_does(matrix):
    """GET /_roles: every declared role's verbs and limits per table are those the model derives."""
    r = matrix.request(ROOT, "GET", "/_roles")
    assert r.status_code == 200, r
    served = {role["name"]: role for role in r.json()["roles"]}
    assert set(ROLES) <= set(served), served.keys()
    for role in ROLES:
        assert served[role]["superUser"] == is_super(role), served[role]
        for table in TABLES:
            verbs = sorted(role_verbs(role, table))
            grant = served[role]["tables"].get(table)
            if not verbs:
                assert grant is None, (role, table, grant)
                continue
            assert sorted(grant["verbs"]) == verbs, (role, table, grant)
            hide, read_only = role_limits(role, table)
            assert sorted(grant.get("hide", [])) == sorted(hide) and sorted(grant.get("readOnly", [])) == sorted(read_only), (
                role, table, grant)


def test_the_matrix_holds_both_outcomes_on_every_door():
    """The declaration exercises each door both ways, so a door that allows (or refuses) everything fails."""
    doors: dict[str, set[bool]] = {}
    for cell in CELLS:
        doors.setdefault(cell.op, set()).add(expected(cell.principal, cell.table, cell.attr, cell.op).allowed)
    assert all(seen == {True, False} for seen in doors.values()), {op: seen for op, seen in doors.items() if seen != {True, False}}


def test_basic_credentials_act_as_the_bearer_token_does(matrix):
    """The same principals over HTTP Basic: each user's read of each table as the model says."""
    for user in USERS:
        for table in TABLES:
            r = http_request(matrix.port, "GET", path(table, SHARED), headers=basic(user, password(user)))
            if allows(user, "read", table):
                assert r.status_code == 200, r
                assert set(r.json()) == {"id", *TABLES[table]} - hidden(user, table), (user, r.json())
            else:
                assert r.status_code == 403 and r.json()["code"] == "forbidden", r
                assert f"user {user} (roles: " in r.json()["detail"] and f"may not read {table} records" in r.json()["detail"], r


def test_a_wrong_password_is_refused_on_every_door_and_never_served_as_anonymous(matrix):
    """Anonymous may read Ledger; wrong credentials for a user are still refused (401), not anonymous."""
    assert allows("anonymous", "read", "Ledger")
    wrong = basic("tess", "not-her-password")
    r = http_request(matrix.port, "GET", path("Ledger", SHARED), headers=wrong)
    assert r.status_code == 401 and "wrong" in r.json()["detail"], r
    paho = Paho(matrix.broker(), "v5", username="tess", password="not-her-password", connect=False)
    try:
        paho.connect(expect_success=False)
        assert paho.connack is not None and paho.connack[1].value == 0x86, paho.connack
    finally:
        paho.close()
