"""REST interface: every method, status code, conditional request and validation path."""

from __future__ import annotations

import threading
import time

import pytest

from microlith_e2e import assert_problem

SCHEMA = """
# Items belong to people; Strict is sealed; Counter has integer keys;
# Event and Audit live in their own databases; Hidden is not exported.
type Person @table @export(name: "People") {
    id: ID @primaryKey
    name: String! @indexed
    age: Int
    items: [Item] @relationship(to: ownerId)
}

type Address {
    city: String
    zip: String
}

type Item @table @export {
    id: ID @primaryKey
    name: String! @indexed
    tags: [String] @indexed
    price: Float @indexed
    n: Int
    big: Long
    when: Date
    ok: Boolean
    blob: Any
    address: Address
    ownerId: ID @indexed
    owner: Person @relationship(from: ownerId)
    created: Long @createdTime
    updated: Long @updatedTime
}

type Strict @table @export @sealed {
    id: ID @primaryKey
    name: String
}

type Counter @table @export {
    id: Int @primaryKey
    label: String
}

type Event @table(database: "events") @export {
    id: ID @primaryKey
    kind: String @indexed
}

type Audit @table(database: "audit") @export {
    id: Long @primaryKey
    note: String
}

type Hidden @table {
    id: ID @primaryKey
    secret: String
}
"""

EXPORTED = "Audit, Counter, Event, Item, People, Strict"


@pytest.fixture(scope="module")
def server(module_factory):
    app = module_factory.app(SCHEMA, web={"index.html": "<h1>items</h1>\n", "js/app.js": "console.log(1)\n"})
    return module_factory.server(app)


def now_ms() -> int:
    return int(time.time() * 1000)


# -- GET / HEAD ------------------------------------------------------------------------------


def test_get_missing_record_is_404_problem(server):
    r = server.get("/Item/does-not-exist")
    assert_problem(r, 404, "Item/does-not-exist does not exist")


def test_put_creates_with_201_location_and_etag_then_get_returns_it(server):
    r = server.put("/Item/create-1", json={"name": "lamp", "price": 12.5, "tags": ["home"]})
    assert r.status_code == 201, r
    assert r.headers["Location"] == "/Item/create-1"
    etag = r.headers["ETag"]
    assert etag and etag.startswith('"') and etag.endswith('"'), etag
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["id"] == "create-1"
    assert body["name"] == "lamp" and body["price"] == 12.5 and body["tags"] == ["home"]

    g = server.get("/Item/create-1")
    assert g.status_code == 200
    assert g.headers["ETag"] == etag
    assert g.json() == body


def test_put_existing_replaces_with_200_new_etag_no_location(server):
    first = server.put("/Item/replace-1", json={"name": "old", "n": 1, "extra": "gone after replace"})
    assert first.status_code == 201
    second = server.put("/Item/replace-1", json={"name": "new"})
    assert second.status_code == 200, second
    assert second.headers.get("Location") is None
    assert second.headers["ETag"] != first.headers["ETag"]
    stored = server.get("/Item/replace-1").json()
    assert stored["name"] == "new"
    # PUT replaces the whole record: attributes left out are gone.
    assert "n" not in stored and "extra" not in stored


def test_put_percent_encoded_id_round_trips(server):
    r = server.put("/Item/a%20b%2Fc", json={"name": "spaced"})
    assert r.status_code == 201, r
    assert r.json()["id"] == "a b/c"
    assert r.headers["Location"] == "/Item/a%20b%2Fc"
    g = server.get(r.headers["Location"])
    assert g.status_code == 200 and g.json()["name"] == "spaced"


def test_a_key_may_hold_slashes_and_a_trailing_slash_lists_a_prefix(server):
    """Table URLs read the same on every door: after `/Item/` the rest of the path is the key, `/` included (spelled
    raw or as %2F); a path that ends in `/` names the records whose key starts with it, listed in key order."""
    for key in ("shelf-9/a", "shelf-9/b", "shelf-9/box/c", "shelf-90/a", "shelf-9"):
        r = server.put("/Item/" + key, json={"name": key, "price": 1.0})
        assert r.status_code == 201, r.text
        assert r.headers["Location"] == "/Item/" + key.replace("/", "%2F")
    assert server.get("/Item/shelf-9/box/c").json()["id"] == "shelf-9/box/c"
    assert server.get("/Item/shelf-9%2Fbox%2Fc").json()["id"] == "shelf-9/box/c"
    listed = server.get("/Item/shelf-9/")
    assert listed.status_code == 200, listed.text
    assert [r["id"] for r in listed.json()] == ["shelf-9/a", "shelf-9/b", "shelf-9/box/c"]
    assert [r["id"] for r in server.get("/Item/shelf-9/?sort(-id)&limit(2)").json()] == ["shelf-9/box/c", "shelf-9/b"]
    assert server.get("/Item/shelf-9/box/").json()[0]["id"] == "shelf-9/box/c"
    refused = server.delete("/Item/shelf-9/")
    assert_problem(refused, 405, "names the records whose key starts with 'shelf-9/'")
    assert refused.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert_problem(server.get("/Counter/1/"), 400, "keys of Counter are numbers")
    assert server.delete("/Item/shelf-9/a").status_code == 204
    assert [r["id"] for r in server.get("/Item/shelf-9/").json()] == ["shelf-9/b", "shelf-9/box/c"]


def test_if_none_match_gives_304_with_etag_and_no_body(server):
    etag = server.put("/Item/cond-get", json={"name": "c"}).headers["ETag"]
    r = server.get("/Item/cond-get", headers={"If-None-Match": etag})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["ETag"] == etag
    # A weak form of the same tag matches too (weak comparison for GET).
    assert server.get("/Item/cond-get", headers={"If-None-Match": "W/" + etag}).status_code == 304
    # One of a list.
    assert server.get("/Item/cond-get", headers={"If-None-Match": f'"nope", {etag}'}).status_code == 304
    assert server.get("/Item/cond-get", headers={"If-None-Match": "*"}).status_code == 304
    other = server.get("/Item/cond-get", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.json()["name"] == "c"


def test_etag_changes_after_write_so_old_tag_no_longer_304(server):
    old = server.put("/Item/cond-get2", json={"name": "v1"}).headers["ETag"]
    server.put("/Item/cond-get2", json={"name": "v2"})
    r = server.get("/Item/cond-get2", headers={"If-None-Match": old})
    assert r.status_code == 200
    assert r.json()["name"] == "v2"


def test_head_record_has_headers_but_no_body(server):
    put = server.put("/Item/head-1", json={"name": "h"})
    get = server.get("/Item/head-1")
    r = server.head("/Item/head-1")
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["ETag"] == put.headers["ETag"]
    assert int(r.headers["Content-Length"]) == len(get.content)
    missing = server.head("/Item/head-missing")
    assert missing.status_code == 404
    assert missing.content == b""


def test_head_collection_has_no_body(server):
    r = server.head("/Item/?name=h")
    assert r.status_code == 200
    assert r.content == b""
    assert "Server-Timing" in r.headers


def test_head_collection_content_length_matches_get(server):
    # RFC 9110 §8.6: a Content-Length sent with HEAD must be the length GET would send.
    server.put("/Item/head-2", json={"name": "head-length"})
    get = server.get("/Item/?name=head-length")
    assert len(get.content) > 2
    r = server.head("/Item/?name=head-length")
    assert r.status_code == 200
    length = r.headers.get("Content-Length")
    assert length is None or int(length) == len(get.content), f"HEAD Content-Length {length}, GET body {len(get.content)} bytes"


# -- conditional writes ----------------------------------------------------------------------


def test_put_if_match_current_etag_succeeds(server):
    etag = server.put("/Item/ifm-1", json={"name": "a"}).headers["ETag"]
    r = server.put("/Item/ifm-1", json={"name": "b"}, headers={"If-Match": etag})
    assert r.status_code == 200, r
    assert server.get("/Item/ifm-1").json()["name"] == "b"


def test_put_if_match_stale_etag_is_412_and_nothing_changes(server):
    stale = server.put("/Item/ifm-2", json={"name": "a"}).headers["ETag"]
    current = server.put("/Item/ifm-2", json={"name": "b"}).headers["ETag"]
    r = server.put("/Item/ifm-2", json={"name": "c"}, headers={"If-Match": stale})
    assert_problem(r, 412, "If-Match failed")
    g = server.get("/Item/ifm-2")
    assert g.json()["name"] == "b"
    assert g.headers["ETag"] == current
    # If-Match compares strongly: a weak tag never matches.
    assert_problem(server.put("/Item/ifm-2", json={"name": "c"}, headers={"If-Match": "W/" + current}), 412)
    # One of a list matches.
    r = server.put("/Item/ifm-2", json={"name": "d"}, headers={"If-Match": f'"other", {current}'})
    assert r.status_code == 200, r


def test_put_if_match_on_absent_record_is_412(server):
    r = server.put("/Item/ifm-absent", json={"name": "x"}, headers={"If-Match": "*"})
    assert_problem(r, 412, "does not exist")
    assert server.get("/Item/ifm-absent").status_code == 404


def test_put_if_none_match_star(server):
    created = server.put("/Item/inm-1", json={"name": "first"}, headers={"If-None-Match": "*"})
    assert created.status_code == 201
    again = server.put("/Item/inm-1", json={"name": "second"}, headers={"If-None-Match": "*"})
    assert_problem(again, 412, "If-None-Match failed")
    assert server.get("/Item/inm-1").json()["name"] == "first"


def test_patch_and_delete_honour_if_match(server):
    etag = server.put("/Item/ifm-3", json={"name": "a"}).headers["ETag"]
    assert_problem(server.patch("/Item/ifm-3", json={"n": 1}, headers={"If-Match": '"stale"'}), 412)
    assert_problem(server.delete("/Item/ifm-3", headers={"If-Match": '"stale"'}), 412)
    assert "n" not in server.get("/Item/ifm-3").json()
    p = server.patch("/Item/ifm-3", json={"n": 1}, headers={"If-Match": etag})
    assert p.status_code == 200
    d = server.delete("/Item/ifm-3", headers={"If-Match": p.headers["ETag"]})
    assert d.status_code == 204


# -- PATCH -----------------------------------------------------------------------------------


def test_patch_merges_and_null_removes(server):
    server.put(
        "/Item/patch-1",
        json={"name": "p", "n": 1, "ok": True, "tags": ["a", "b"], "address": {"city": "Oslo", "zip": "0150"}, "note": "x"},
    )
    r = server.patch("/Item/patch-1", json={"n": 2, "ok": None, "tags": ["c"], "address": {"zip": None}, "added": 7})
    assert r.status_code == 200, r
    body = r.json()
    assert body["name"] == "p"  # untouched
    assert body["n"] == 2  # replaced
    assert "ok" not in body  # null removes
    assert body["tags"] == ["c"]  # arrays are replaced, not merged
    assert body["address"] == {"city": "Oslo"}  # objects merge recursively; null removes inside
    assert body["added"] == 7  # new attribute on an open table
    assert body["note"] == "x"
    assert server.get("/Item/patch-1").json() == body
    assert r.headers["ETag"] == server.get("/Item/patch-1").headers["ETag"]
    # A patch object for an attribute that is not an object replaces it, without its nulls.
    r = server.patch("/Item/patch-1", json={"note": {"a": 1, "b": None}, "fresh": {"x": {"y": None, "z": 2}}})
    assert r.status_code == 200, r
    assert r.json()["note"] == {"a": 1}
    assert r.json()["fresh"] == {"x": {"z": 2}}
    # Removing an attribute that is not there is not an error.
    unchanged = server.patch("/Item/patch-1", json={"never-there": None}).json()
    assert {k: v for k, v in unchanged.items() if k != "updated"} == {k: v for k, v in r.json().items() if k != "updated"}


def test_patch_absent_record_is_404_and_does_not_create(server):
    r = server.patch("/Item/patch-missing", json={"name": "x"})
    assert_problem(r, 404, "Item/patch-missing does not exist")
    assert server.get("/Item/patch-missing").status_code == 404


def test_patch_validates_the_merged_record(server):
    server.put("/Item/patch-2", json={"name": "p"})
    assert_problem(server.patch("/Item/patch-2", json={"n": "two"}), 400, "'n'")
    # Removing a required attribute makes the record invalid.
    assert_problem(server.patch("/Item/patch-2", json={"name": None}), 400, "'name'", "required")
    assert server.get("/Item/patch-2").json()["name"] == "p"


# -- POST ------------------------------------------------------------------------------------


def test_post_creates_with_generated_id_and_location(server):
    r = server.post("/Item/", json={"name": "posted"})
    assert r.status_code == 201, r
    body = r.json()
    new_id = body["id"]
    assert isinstance(new_id, str) and len(new_id) >= 8
    assert r.headers["Location"] == f"/Item/{new_id}"
    assert r.headers["ETag"]
    g = server.get(r.headers["Location"])
    assert g.status_code == 200 and g.json() == body
    second = server.post("/Item/", json={"name": "posted"}).json()["id"]
    assert second != new_id


def test_post_without_trailing_slash_also_creates(server):
    r = server.post("/Item", json={"name": "no-slash"})
    assert r.status_code == 201, r
    assert server.get(r.headers["Location"]).json()["name"] == "no-slash"


def test_post_with_integer_keys_counts_up(server):
    a = server.post("/Counter/", json={"label": "a"})
    b = server.post("/Counter/", json={"label": "b"})
    assert a.status_code == 201 and b.status_code == 201
    ida, idb = a.json()["id"], b.json()["id"]
    assert isinstance(ida, int) and idb == ida + 1
    assert a.headers["Location"] == f"/Counter/{ida}"
    assert server.get(f"/Counter/{idb}").json() == {"id": idb, "label": "b"}


def test_post_with_given_id_uses_it_and_refuses_an_existing_one(server):
    r = server.post("/Item/", json={"id": "chosen-1", "name": "mine"})
    assert r.status_code == 201, r
    assert r.headers["Location"] == "/Item/chosen-1"
    again = server.post("/Item/", json={"id": "chosen-1", "name": "overwrite?"})
    # POST creates; it must not replace an existing record. 409 Conflict is the usual answer;
    # 412 is accepted too (the store treats POST as an insert with an implicit If-None-Match: *).
    assert again.status_code in (409, 412), again
    assert again.headers["Content-Type"].startswith("application/problem+json")
    assert server.get("/Item/chosen-1").json()["name"] == "mine"


def test_post_conflict_message_does_not_blame_a_header_never_sent(server):
    assert server.post("/Item/", json={"id": "chosen-2", "name": "mine"}).status_code == 201
    again = server.post("/Item/", json={"id": "chosen-2", "name": "again"})
    body = again.json()
    # The request carried no If-None-Match header; the message must say the record exists.
    assert "If-None-Match" not in body["detail"], body
    assert "chosen-2" in body["detail"] and "exist" in body["detail"], body


def test_method_not_allowed(server):
    r = server.put("/Item/", json={"name": "x"})
    assert_problem(r, 405, "PUT needs a record id")
    assert r.headers["Allow"] == "GET, HEAD, POST, DELETE, OPTIONS"
    r = server.patch("/Item/", json={"name": "x"})
    assert_problem(r, 405, "PATCH needs a record id")
    r = server.post("/Item/some-id", json={"name": "x"})
    assert_problem(r, 405, "POST /Item/")
    assert r.headers["Allow"] == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"


# -- DELETE ----------------------------------------------------------------------------------


def test_delete_then_404(server):
    server.put("/Item/del-1", json={"name": "d"})
    r = server.delete("/Item/del-1")
    assert r.status_code == 204
    assert r.content == b""
    assert server.get("/Item/del-1").status_code == 404
    assert_problem(server.delete("/Item/del-1"), 404, "Item/del-1 does not exist")


def test_delete_by_query(server):
    for i in range(4):
        server.put(f"/Item/dq-{i}", json={"name": "doomed" if i < 3 else "kept", "tags": ["dq"]})
    # Several matches need limit(n): without it nothing is deleted.
    assert_problem(server.delete("/Item/?name=doomed"), 400, "more than one record", "limit(")
    assert len(server.query("Item", "name=doomed")) == 3
    r = server.delete("/Item/?name=doomed&limit(10)")
    assert r.status_code == 200, r
    assert r.json() == {"deleted": 3}
    assert [x["id"] for x in server.query("Item", "tags=dq")] == ["dq-3"]
    for i in range(3):
        assert server.get(f"/Item/dq-{i}").status_code == 404
    assert server.get("/Item/dq-3").status_code == 200
    r = server.delete("/Item/?name=doomed")
    assert r.status_code == 200 and r.json() == {"deleted": 0}
    for i in range(3):
        server.put(f"/Item/dq-or-{i}", json={"name": f"or-{i}"})
    r = server.delete("/Item/?[name=or-0|name=or-2]&limit(2)")
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    assert server.get("/Item/dq-or-1").status_code == 200
    assert server.get("/Item/dq-or-2").status_code == 404


def test_delete_collection_without_condition_is_refused(server):
    server.put("/Item/survivor", json={"name": "survivor"})
    assert_problem(server.delete("/Item/"), 400, "needs a query")
    assert_problem(server.delete("/Item/?limit(1)"), 400, "at least one condition")
    assert server.get("/Item/survivor").status_code == 200


# -- server-set attributes -------------------------------------------------------------------


def test_created_and_updated_times_are_set_by_the_server(server):
    before = now_ms()
    first = server.put("/Item/times-1", json={"name": "t", "created": 5, "updated": 6}).json()
    after = now_ms()
    assert before - 2000 <= first["created"] <= after + 2000
    assert first["updated"] == first["created"]
    time.sleep(0.05)
    second = server.put("/Item/times-1", json={"name": "t2"}).json()
    assert second["created"] == first["created"]  # survives replacement
    assert second["updated"] > first["updated"]
    time.sleep(0.05)
    third = server.patch("/Item/times-1", json={"n": 3}).json()
    assert third["created"] == first["created"]
    assert third["updated"] > second["updated"]
    assert server.get("/Item/times-1").json() == third
    # Clients cannot remove or overwrite them either.
    fourth = server.patch("/Item/times-1", json={"created": None, "updated": 1}).json()
    assert fourth["created"] == first["created"]
    assert fourth["updated"] >= third["updated"]


# -- open and sealed records -----------------------------------------------------------------


def test_open_table_keeps_undeclared_attributes(server):
    extra = {"color": "red", "dims": {"w": 1, "h": [2, 3]}, "flag": None, "list": [1, "two", False]}
    r = server.put("/Item/open-1", json={"name": "o", **extra})
    assert r.status_code == 201
    stored = server.get("/Item/open-1").json()
    for k, v in extra.items():
        assert stored[k] == v


def test_sealed_table_rejects_undeclared_attributes(server):
    ok = server.put("/Strict/s1", json={"name": "fine"})
    assert ok.status_code == 201
    r = server.put("/Strict/s2", json={"name": "x", "color": "red"})
    body = assert_problem(r, 400, "'color'", "sealed")
    assert body.get("attribute") == "color"
    assert server.get("/Strict/s2").status_code == 404
    assert_problem(server.patch("/Strict/s1", json={"color": "red"}), 400, "'color'")
    assert_problem(server.post("/Strict/", json={"name": "y", "color": "red"}), 400, "'color'")


# -- type validation -------------------------------------------------------------------------

BAD_VALUES = [
    ({"n": "five"}, "n", "Int"),
    ({"n": 1.5}, "n", "Int"),
    ({"n": 2**40}, "n", "Int"),
    ({"big": "1"}, "big", "Long"),
    ({"price": "cheap"}, "price", "Float"),
    ({"ok": "yes"}, "ok", "Boolean"),
    ({"when": "not a date"}, "when", "Date"),
    ({"when": True}, "when", "Date"),
    ({"tags": "home"}, "tags", "list"),
    ({"tags": ["a", 1]}, "tags[1]", "String"),
    ({"address": "Main St"}, "address", "Address"),
    ({"address": {"city": 5}}, "address.city", "String"),
    ({"ownerId": True}, "ownerId", "ID"),
    ({"owner": {"name": "x"}}, "owner", "relationship"),
]


@pytest.mark.parametrize("patch,attribute,expected", BAD_VALUES, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD_VALUES)])
def test_wrong_type_is_400_naming_the_attribute(server, patch, attribute, expected):
    r = server.put("/Item/bad-type", json={"name": "x", **patch})
    body = assert_problem(r, 400, f"'{attribute}'", expected)
    assert body.get("attribute") == attribute
    assert server.get("/Item/bad-type").status_code == 404


def test_required_attribute_missing_or_null(server):
    body = assert_problem(server.put("/Item/req-1", json={"price": 1}), 400, "attribute 'name' is required")
    assert body["attribute"] == "name"
    assert_problem(server.put("/Item/req-1", json={"name": None}), 400, "'name'", "cannot be null")
    assert_problem(server.post("/Item/", json={"price": 1}), 400, "'name'")


def test_body_id_must_match_path_id(server):
    r = server.put("/Item/id-a", json={"id": "id-b", "name": "x"})
    body = assert_problem(r, 400, "does not match")
    assert body.get("attribute") == "id"
    assert server.get("/Item/id-a").status_code == 404
    assert server.get("/Item/id-b").status_code == 404
    # The same id in the body is fine.
    assert server.put("/Item/id-a", json={"id": "id-a", "name": "x"}).status_code == 201


def test_integral_number_as_integer_key_in_body_is_normalised(server):
    # Integral numbers written as 5.0 are integers for Int attributes; the Int key is one too.
    assert server.put("/Item/int-like", json={"name": "x", "n": 5.0}).json()["n"] == 5
    r = server.put("/Counter/500", json={"id": 500.0, "label": "x"})
    assert r.status_code == 201, r
    assert r.json() == {"id": 500, "label": "x"}


def test_number_for_a_string_key_says_what_type_is_expected(server):
    body = assert_problem(server.put("/Item/5", json={"id": 5, "name": "x"}), 400, "'id'")
    # "(5) does not match '5'" would leave the client puzzled: the problem is the type.
    assert "string" in body["detail"], body["detail"]


def test_values_are_normalised(server):
    r = server.put(
        "/Item/norm-1",
        json={"name": "n", "n": 4.0, "big": 9007199254740993, "when": "2024-05-01", "ok": False, "blob": {"any": [1, None]}},
    )
    assert r.status_code == 201, r
    body = server.get("/Item/norm-1").json()
    assert body["n"] == 4 and isinstance(body["n"], int)
    assert body["big"] == 9007199254740993  # 64-bit integers are kept exactly
    assert body["when"] == "2024-05-01T00:00:00.000Z"
    assert body["blob"] == {"any": [1, None]}
    r = server.put("/Item/norm-2", json={"name": "n", "when": 0})
    assert r.json()["when"] == "1970-01-01T00:00:00.000Z"
    r = server.put("/Item/norm-3", json={"name": "n", "when": "2024-05-01T10:00:00+02:00"})
    assert r.json()["when"] == "2024-05-01T08:00:00.000Z"


# -- content types ---------------------------------------------------------------------------


def test_form_urlencoded_and_missing_content_type_are_read_as_json(server):
    # curl -d sends application/x-www-form-urlencoded by default.
    r = server.put(
        "/Item/curl-1", data='{"name":"from curl"}', headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 201, r
    r = server.put("/Item/curl-2", data='{"name":"no type"}')
    assert r.status_code == 201, r
    r = server.put("/Item/curl-3", data='{"name":"ld"}', headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 201, r
    assert server.get("/Item/curl-1").json()["name"] == "from curl"


def test_unsupported_content_type_is_415(server):
    r = server.put("/Item/png", data=b"\x89PNG\r\n\x1a\n", headers={"Content-Type": "image/png"})
    assert_problem(r, 415, "image/png")
    r = server.post("/Item/", data=b"name=x", headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert_problem(r, 415, "multipart/form-data")
    assert server.get("/Item/png").status_code == 404


# -- several databases -----------------------------------------------------------------------


def test_tables_in_other_databases_get_their_own_sqlite_files(server):
    assert server.put("/Event/e1", json={"kind": "click"}).status_code == 201
    assert server.put("/Audit/7", json={"note": "seen"}).status_code == 201
    assert server.put("/Item/db-1", json={"name": "in data"}).status_code == 201
    assert server.get("/Event/e1").json() == {"id": "e1", "kind": "click"}
    assert server.get("/Audit/7").json() == {"id": 7, "note": "seen"}
    assert [e["id"] for e in server.query("Event", "kind=click")] == ["e1"]
    files = sorted(p.name for p in server.data_dir.iterdir() if p.name.endswith(".sqlite"))
    assert files == ["audit.sqlite", "data.sqlite", "events.sqlite"]
    for f in files:
        assert (server.data_dir / f).stat().st_size > 0


def test_long_key_table(server):
    assert server.put("/Audit/9007199254740993", json={"note": "big"}).status_code == 201
    assert server.get("/Audit/9007199254740993").json()["id"] == 9007199254740993
    assert_problem(server.get("/Audit/x9"), 400, "not a valid Long key")


# -- routing ---------------------------------------------------------------------------------


def test_unknown_and_unexported_tables_are_404(server):
    assert_problem(server.get("/Nope/1"), 404, "/Nope/1")
    assert_problem(server.put("/Nope/1", json={"a": 1}), 404, "no exported table named 'Nope'", EXPORTED)
    assert_problem(server.post("/Nope/", json={"a": 1}), 404, "'Nope'")
    assert_problem(server.delete("/Nope/1"), 404, "'Nope'")
    # Hidden is a table, but not exported.
    assert_problem(server.get("/Hidden/1"), 404)
    assert_problem(server.put("/Hidden/1", json={"secret": "s"}), 404, "'Hidden'")
    # The type name is not the URL of a renamed export.
    assert_problem(server.get("/Person/1"), 404)


def test_renamed_export_and_one_to_many(server):
    assert server.put("/People/ann", json={"name": "Ann", "age": 40}).status_code == 201
    server.put("/Item/own-1", json={"name": "hammer", "ownerId": "ann"})
    server.put("/Item/own-2", json={"name": "saw", "ownerId": "ann"})
    assert server.get("/People/ann").json() == {"id": "ann", "name": "Ann", "age": 40}
    people = server.query("People", "name=Ann&select(name,items{name})")
    assert len(people) == 1
    assert people[0]["name"] == "Ann"
    assert sorted(i["name"] for i in people[0]["items"]) == ["hammer", "saw"]


def test_options_lists_the_methods_of_a_path(server):
    server.put("/Item/methods", json={"name": "m"})
    r = server.request("OPTIONS", "/Item/methods")
    assert r.status_code == 204, r
    assert r.headers["Allow"] == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
    r = server.request("OPTIONS", "/Item/")
    assert r.status_code == 204, r
    assert r.headers["Allow"] == "GET, HEAD, POST, DELETE, OPTIONS"
    assert_problem(server.request("OPTIONS", "/Nope/1"), 404, "no exported table")


def test_trace_on_a_table_is_method_not_allowed(server):
    server.put("/Item/methods", json={"name": "m"})
    for path in ("/Item/methods", "/Item/"):
        r = server.request("TRACE", path)
        # The table exists: the answer is 405, not "no exported table".
        assert_problem(r, 405, "TRACE is not supported")
        assert "OPTIONS" in r.headers["Allow"]


def test_health(server):
    r = server.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_static_files_from_web(server):
    r = server.get("/")
    assert r.status_code == 200
    assert r.text == "<h1>items</h1>\n"
    assert r.headers["Content-Type"].startswith("text/html")
    r = server.get("/index.html")
    assert r.status_code == 200 and r.text == "<h1>items</h1>\n"
    r = server.get("/js/app.js")
    assert r.status_code == 200 and r.text == "console.log(1)\n"
    assert_problem(server.get("/nothing-here.txt"), 404, "/nothing-here.txt")
    assert_problem(server.get("/js/none.js"), 404)


def test_collection_get_is_json_array_with_server_timing(server):
    server.put("/Item/coll-1", json={"name": "collection-test"})
    r = server.get("/Item/?name=collection-test")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == [server.get("/Item/coll-1").json()]
    assert r.headers["Server-Timing"].startswith("query;")


# -- concurrency -----------------------------------------------------------------------------


def run_concurrently(count, work):
    results = [None] * count

    def one(i):
        results[i] = work(i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_conditional_puts_only_one_wins(server):
    etag = server.put("/Item/race", json={"name": "r", "n": -1}).headers["ETag"]
    statuses = run_concurrently(
        16, lambda i: server.put("/Item/race", json={"name": "r", "n": i}, headers={"If-Match": etag}).status_code
    )
    assert sorted(statuses) == [200] + [412] * 15
    assert server.get("/Item/race").json()["n"] in range(16)


def test_concurrent_creates_with_if_none_match_only_one_wins(server):
    statuses = run_concurrently(
        16, lambda i: server.put("/Item/once", json={"name": f"n{i}"}, headers={"If-None-Match": "*"}).status_code
    )
    assert sorted(statuses) == [201] + [412] * 15


def test_concurrent_posts_get_distinct_integer_keys(server):
    answers = run_concurrently(20, lambda i: server.post("/Counter/", json={"label": f"c{i}"}))
    assert all(a.status_code == 201 for a in answers), answers
    keys = [a.json()["id"] for a in answers]
    assert len(set(keys)) == 20
    for a in answers:
        assert server.get(a.headers["Location"]).json() == a.json()


def test_concurrent_patches_of_different_attributes_all_land(server):
    server.put("/Item/merge", json={"name": "m"})
    answers = run_concurrently(20, lambda i: server.patch("/Item/merge", json={f"f{i}": i}).status_code)
    assert answers == [200] * 20
    record = server.get("/Item/merge").json()
    assert all(record[f"f{i}"] == i for i in range(20))


@pytest.mark.parametrize("cache_mb", [0, 1])
def test_reads_see_acknowledged_writes_under_concurrency(factory, cache_mb):
    # With the record cache off and with a tiny one (constant eviction), every read after an
    # acknowledged write sees that write: by key, by ETag, and through queries.
    server = factory.server(factory.app(SCHEMA), cache_mb=cache_mb)
    errors = []

    def work(t):
        for i in range(40):
            key = f"ryw-{t}-{i % 5}"
            r = server.put(f"/Item/{key}", json={"name": f"t{t}", "n": i, "blob": "z" * 3000})
            if r.status_code not in (200, 201):
                errors.append(f"PUT {key}: {r.status_code}")
                continue
            g = server.get(f"/Item/{key}")
            if g.status_code != 200 or g.json()["n"] != i or g.headers["ETag"] != r.headers["ETag"]:
                errors.append(f"GET {key} after writing n={i}: {g.status_code} {g.text[:80]}")
            q = server.query("Item", f"id={key}&select(n)")
            if q != [{"n": i}]:
                errors.append(f"query {key} after writing n={i}: {q}")
            if i % 8 == 7:
                if server.delete(f"/Item/{key}").status_code != 204 or server.get(f"/Item/{key}").status_code != 404:
                    errors.append(f"{key} still readable after its DELETE was acknowledged")

    run_concurrently(4, work)
    assert not errors, "\n".join(errors[:20])


# -- expiration ------------------------------------------------------------------------------

EXPIRING_SCHEMA = """
type Session @table(expiration: 3) @export {
    id: ID @primaryKey
    user: String @indexed
    note: String
}
"""


def wait_until(start: float, seconds: float):
    delay = start + seconds - time.monotonic()
    if delay > 0:
        time.sleep(delay)


@pytest.fixture
def sessions(factory):
    return factory.server(factory.app(EXPIRING_SCHEMA))


def test_expired_records_are_hidden_from_every_read(sessions):
    # README: records vanish `expiration` seconds after their last write, hidden from reads at once.
    start = time.monotonic()
    assert sessions.put("/Session/old", json={"user": "ann", "note": "x"}).status_code == 201
    assert sessions.put("/Session/renewed", json={"user": "ann", "note": "x"}).status_code == 201
    wait_until(start, 1.8)
    assert sessions.put("/Session/renewed", json={"user": "ann", "note": "y"}).status_code == 200
    wait_until(start, 3.9)  # old: 3.9 s after its write; renewed: 2.1 s after its last write
    assert sessions.get("/Session/old").status_code == 404
    assert sessions.head("/Session/old").status_code == 404
    assert sessions.get("/Session/renewed").status_code == 200
    for query in ["user=ann", "note=ct=", ""]:
        found = [r["id"] for r in sessions.query("Session", query)]
        assert found == ["renewed"], f"?{query} still returns an expired record: {found}"
    assert sessions.query("Session", "id=old") == []
    wait_until(start, 5.7)
    assert sessions.get("/Session/renewed").status_code == 404
    assert sessions.query("Session", "user=ann") == []


def test_expired_record_is_absent_for_writes(sessions):
    start = time.monotonic()
    assert sessions.put("/Session/s1", json={"user": "bob"}).status_code == 201
    assert sessions.put("/Session/s2", json={"user": "bob"}).status_code == 201
    assert sessions.put("/Session/s3", json={"user": "bob"}).status_code == 201
    wait_until(start, 4.2)
    assert sessions.get("/Session/s1").status_code == 404
    # An expired record cannot be patched back to life, and counts as absent for If-None-Match.
    assert_problem(sessions.patch("/Session/s1", json={"note": "late"}), 404)
    r = sessions.put("/Session/s2", json={"user": "carol"}, headers={"If-None-Match": "*"})
    assert r.status_code == 201, r
    assert_problem(sessions.delete("/Session/s3"), 404)
    assert [r["id"] for r in sessions.query("Session", "")] == ["s2"]
