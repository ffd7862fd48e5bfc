"""The URL query language on GET /Table/?query, run against seeded data."""

from __future__ import annotations

import pytest

from microlith_e2e import assert_problem, run_microlith, serve_must_fail

SCHEMA = """
type Brand @table @export {
    id: ID @primaryKey
    name: String! @indexed
    country: String
    products: [Product] @relationship(to: brandId)
}

type Product @table @export {
    id: ID @primaryKey
    name: String! @indexed
    category: String @indexed
    price: Float @indexed
    stock: Int @indexed
    rating: Float
    active: Boolean @indexed
    tags: [String] @indexed
    released: Date @indexed
    note: String
    brandId: ID @indexed
    brand: Brand @relationship(from: brandId)
}

type Tag @table @export @sealed {
    id: ID @primaryKey
    label: String
}
"""

BRANDS = [
    {"id": "acme", "name": "Acme", "country": "US"},
    {"id": "zenith", "name": "Zenith", "country": "DE"},
    {"id": "orphan", "name": "Orphan", "country": "FR"},
]

PRODUCTS = [
    {"id": "p01", "name": "Trail Runner", "category": "shoes", "price": 89.5, "stock": 5, "rating": 4.5, "active": True,
     "tags": ["sale", "outdoor"], "released": "2024-03-01", "note": "light", "brandId": "acme", "promo": True},
    {"id": "p02", "name": "Road Runner", "category": "shoes", "price": 120, "stock": 0, "rating": 3.9, "active": True,
     "tags": ["new"], "released": "2024-06-15", "brandId": "acme", "promo": "true"},
    {"id": "p03", "name": "Hiking Boot", "category": "boots", "price": 150, "stock": 12, "rating": 4.8, "active": False,
     "tags": ["outdoor"], "released": "2023-11-20", "note": "heavy", "brandId": "zenith"},
    {"id": "p04", "name": "Rain Boot", "category": "boots", "price": 45, "stock": 30, "rating": 3.2, "active": True,
     "tags": [], "released": "2022-09-01", "brandId": "zenith"},
    {"id": "p05", "name": "Sandal", "category": "shoes", "price": 19.99, "stock": 100, "active": True,
     "tags": ["sale", "summer"], "released": "2024-05-01"},
    {"id": "p06", "name": "Wool Sock", "category": "socks", "price": 12, "stock": 200, "rating": 4.1, "active": True,
     "tags": ["sale"], "released": "2021-01-10", "note": "warm", "brandId": "acme"},
    {"id": "p07", "name": "Cotton Sock", "category": "socks", "price": 8, "stock": 0, "rating": 3.5, "active": False,
     "brandId": "zenith"},
    {"id": "p08", "name": "Trail Boot", "category": "boots", "price": 175.25, "stock": 3, "rating": 4.9, "active": True,
     "tags": ["outdoor", "new"], "released": "2024-08-30", "brandId": "acme"},
    {"id": "p09", "name": "Mystery Box", "price": 10, "stock": 1, "rating": 2.0, "active": False, "code": "5"},
    {"id": "p10", "name": "Gift Card", "category": "misc", "price": 50, "stock": 999, "rating": 5, "active": True,
     "tags": ["gift"], "brandId": "zenith", "code": 5},
]

ALL = [p["id"] for p in PRODUCTS]


@pytest.fixture(scope="module")
def app(module_factory):
    return module_factory.app(SCHEMA, data={"Brand": BRANDS, "Product": PRODUCTS, "Tag": [{"id": "t1", "label": "x"}]})


@pytest.fixture(scope="module")
def server(module_factory, app):
    return module_factory.server(app)


def ids(server, query, table="Product"):
    return server.ids(table, query)


def id_set(server, query, table="Product"):
    found = ids(server, query, table)
    assert len(found) == len(set(found)), f"duplicates in {found}"
    return set(found)


def test_seed_files_were_loaded(server):
    assert id_set(server, "") == set(ALL)
    assert id_set(server, "", "Brand") == {"acme", "zenith", "orphan"}
    assert server.get("/Product/p01").json()["released"] == "2024-03-01T00:00:00.000Z"


# -- comparison operators --------------------------------------------------------------------

OPERATOR_CASES = [
    ("category=shoes", {"p01", "p02", "p05"}),
    ("category==shoes", {"p01", "p02", "p05"}),
    ("category=eq=shoes", {"p01", "p02", "p05"}),
    ("category!=shoes", {"p03", "p04", "p06", "p07", "p08", "p09", "p10"}),
    ("category=ne=shoes", {"p03", "p04", "p06", "p07", "p08", "p09", "p10"}),
    ("price=gt=100", {"p02", "p03", "p08"}),
    ("price=ge=120", {"p02", "p03", "p08"}),
    ("price=lt=19.99", {"p06", "p07", "p09"}),
    ("price=le=19.99", {"p05", "p06", "p07", "p09"}),
    ("stock=0", {"p02", "p07"}),
    ("stock=gt=100", {"p06", "p10"}),
    ("active=false", {"p03", "p07", "p09"}),
    ("name=sw=Trail", {"p01", "p08"}),
    ("name=ct=Boot", {"p03", "p04", "p08"}),
    ("name=ct=oot", {"p03", "p04", "p08"}),
    ("note=ct=ea", {"p03"}),
    ("note=sw=w", {"p06"}),
    ("rating=ge=4.8", {"p03", "p08", "p10"}),
    ("released=ge=2024-05-01", {"p02", "p05", "p08"}),
    ("released=lt=2022-01-01", {"p06"}),
    ("name=Trail%20Runner", {"p01"}),
    ("id=p04", {"p04"}),
    ("id=ne=p04&category=boots", {"p03", "p08"}),
    ("category=shoes&active=true&price=lt=100", {"p01", "p05"}),
    ("category=nothing", set()),
]


@pytest.mark.parametrize("query,expected", OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operators(server, query, expected):
    assert id_set(server, query) == expected


# -- ranges, or, grouping --------------------------------------------------------------------

RANGE_CASES = [
    ("price=gt=10&lt=50", {"p04", "p05", "p06"}),
    ("price=ge=10&le=50", {"p04", "p05", "p06", "p09", "p10"}),
    ("price=gt=10&price=lt=50", {"p04", "p05", "p06"}),
    ("released=gt=2024-01-01&lt=2024-07-01", {"p01", "p02", "p05"}),
    ("price=lt=10|gt=170", {"p07", "p08"}),
    ("category=socks|category=misc", {"p06", "p07", "p10"}),
    ("category=socks|price=gt=170|name=Sandal", {"p05", "p06", "p07", "p08"}),
    ("[category=shoes|category=boots]&price=lt=100", {"p01", "p04", "p05"}),
    ("price=lt=100&[category=shoes|category=boots]", {"p01", "p04", "p05"}),
    ("category=boots&[stock=0|active=false]", {"p03"}),
    ("[[category=shoes&active=true]|[category=socks&stock=0]]", {"p01", "p02", "p05", "p07"}),
    ("category=shoes&active=true|category=socks&stock=0", {"p01", "p02", "p05", "p07"}),
]


@pytest.mark.parametrize("query,expected", RANGE_CASES, ids=[c[0] for c in RANGE_CASES])
def test_ranges_or_and_grouping(server, query, expected):
    assert id_set(server, query) == expected


@pytest.mark.parametrize(
    "query,expected",
    [
        ("(category=shoes|category=boots)&price=lt=100", {"p01", "p04", "p05"}),
        ("category=boots&(stock=0|active=false)", {"p03"}),
    ],
)
def test_parenthesis_grouping(server, query, expected):
    # The query language groups with [ ] and, as Harper's does, with ( ).
    r = server.get(f"/Product/?{query}")
    assert r.status_code == 200, r
    assert {x["id"] for x in r.json()} == expected


# -- arrays ----------------------------------------------------------------------------------

ARRAY_CASES = [
    ("tags=sale", {"p01", "p05", "p06"}),
    ("tags=outdoor", {"p01", "p03", "p08"}),
    ("tags==new", {"p02", "p08"}),
    ("tags=sw=su", {"p05"}),
    ("tags=ct=doo", {"p01", "p03", "p08"}),
    ("tags=new&tags=outdoor", {"p08"}),
    ("tags=gift|tags=summer", {"p05", "p10"}),
    ("tags!=sale", {"p02", "p03", "p04", "p07", "p08", "p09", "p10"}),
]


@pytest.mark.parametrize("query,expected", ARRAY_CASES, ids=[c[0] for c in ARRAY_CASES])
def test_array_attribute_matches_any_element(server, query, expected):
    assert id_set(server, query) == expected


# -- typed values and null -------------------------------------------------------------------

TYPED_CASES = [
    # `code` is not declared: untyped text is a string; number:/string: fix the type.
    ("code=5", {"p09"}),
    ("code==string:5", {"p09"}),
    ("code==number:5", {"p10"}),
    ("code=gt=number:4", {"p10"}),
    ("promo=boolean:true", {"p01"}),
    ("promo=true", {"p02"}),
    ("released==date:2024-05-01T00:00:00Z", {"p05"}),
    ("released=gt=date:1700000000000", {"p01", "p02", "p03", "p05", "p08"}),  # 2023-11-14T22:13:20Z
    ("stock==number:0", {"p02", "p07"}),
    ("price==number:120", {"p02"}),
    ("price=120.0", {"p02"}),
]


@pytest.mark.parametrize("query,expected", TYPED_CASES, ids=[c[0] for c in TYPED_CASES])
def test_typed_values(server, query, expected):
    assert id_set(server, query) == expected


NULL_CASES = [
    ("note=null", {"p02", "p04", "p05", "p07", "p08", "p09", "p10"}),
    ("note!=null", {"p01", "p03", "p06"}),
    ("category=null", {"p09"}),
    ("category!=null", set(ALL) - {"p09"}),
    ("brandId=null", {"p05", "p09"}),
    ("rating=null", {"p05"}),
    ("released=null&active=false", {"p07", "p09"}),
]


@pytest.mark.parametrize("query,expected", NULL_CASES, ids=[c[0] for c in NULL_CASES])
def test_null(server, query, expected):
    assert id_set(server, query) == expected


# -- relationships ---------------------------------------------------------------------------

RELATION_CASES = [
    ("Product", "brand.name=Acme", {"p01", "p02", "p06", "p08"}),
    ("Product", "brand.country=DE", {"p03", "p04", "p07", "p10"}),
    ("Product", "brand.name=sw=Ze", {"p03", "p04", "p07", "p10"}),
    ("Product", "brand.name=Acme&price=gt=100", {"p02", "p08"}),
    ("Product", "brand.name=Acme|brand.name=Orphan", {"p01", "p02", "p06", "p08"}),
    ("Product", "brand.id=zenith&tags=outdoor", {"p03"}),
    ("Brand", "products.category=socks", {"acme", "zenith"}),
    ("Brand", "products.price=gt=170", {"acme"}),
    ("Brand", "products.name=Sandal", set()),
    ("Brand", "products.tags=gift", {"zenith"}),
]


@pytest.mark.parametrize("table,query,expected", RELATION_CASES, ids=[c[0] + ":" + c[1] for c in RELATION_CASES])
def test_dotted_relationship_filters(server, table, query, expected):
    assert id_set(server, query, table) == expected


# -- select ----------------------------------------------------------------------------------


def test_select_returns_only_the_named_attributes_in_order(server):
    rows = server.query("Product", "category=socks&select(price,name)&sort(+price)")
    assert rows == [{"price": 8, "name": "Cotton Sock"}, {"price": 12, "name": "Wool Sock"}]
    assert [list(r.keys()) for r in rows] == [["price", "name"], ["price", "name"]]


def test_select_leaves_out_missing_attributes(server):
    rows = server.query("Product", "category=boots&select(id,note)&sort(id)")
    assert rows == [{"id": "p03", "note": "heavy"}, {"id": "p04"}, {"id": "p08"}]


def test_select_join_many_to_one(server):
    rows = server.query("Product", "id=p01&select(name,brand{name,country})")
    assert rows == [{"name": "Trail Runner", "brand": {"name": "Acme", "country": "US"}}]
    rows = server.query("Product", "id=p05&select(name,brand{name})")
    assert rows == [{"name": "Sandal", "brand": None}]


def test_select_join_one_to_many(server):
    rows = server.query("Brand", "select(id,products{name})&sort(id)")
    by_id = {r["id"]: sorted(p["name"] for p in r["products"]) for r in rows}
    assert by_id == {
        "acme": ["Road Runner", "Trail Boot", "Trail Runner", "Wool Sock"],
        "orphan": [],
        "zenith": ["Cotton Sock", "Gift Card", "Hiking Boot", "Rain Boot"],
    }
    assert all(set(p.keys()) == {"name"} for r in rows for p in r["products"])


def test_select_nested_join(server):
    rows = server.query("Product", "id=p07&select(id,brand{name,products{id}})")
    assert len(rows) == 1
    assert rows[0]["brand"]["name"] == "Zenith"
    assert sorted(p["id"] for p in rows[0]["brand"]["products"]) == ["p03", "p04", "p07", "p10"]


def test_select_whole_related_record(server):
    rows = server.query("Product", "id=p03&select(id,brand)")
    # A relationship selected without {…} is joined as the whole related record.
    assert rows == [{"id": "p03", "brand": {"id": "zenith", "name": "Zenith", "country": "DE"}}]


# -- sort and limit --------------------------------------------------------------------------

BY_PRICE = ["p07", "p09", "p06", "p05", "p04", "p10", "p01", "p02", "p03", "p08"]


def test_sort_ascending_and_descending(server):
    assert ids(server, "sort(+price)") == BY_PRICE
    assert ids(server, "sort(price)") == BY_PRICE
    assert ids(server, "sort(-price)") == BY_PRICE[::-1]


def test_sort_by_several_keys(server):
    # Missing category sorts first; then by category; price descending within one.
    assert ids(server, "sort(category,-price)") == ["p09", "p08", "p03", "p04", "p10", "p02", "p01", "p05", "p06", "p07"]


def test_sort_by_unindexed_attribute_with_missing_values(server):
    # The record without a rating is null, which sorts before every number.
    assert ids(server, "sort(-rating)") == ["p10", "p08", "p03", "p01", "p06", "p02", "p07", "p04", "p09", "p05"]
    assert ids(server, "sort(+rating)")[0] == "p05"


def test_sort_by_related_attribute(server):
    # Boots: Acme p08 (175.25); Zenith p04 (45), p03 (150). By price alone: p04, p03, p08.
    assert ids(server, "category=boots&sort(brand.name,price)") == ["p08", "p04", "p03"]
    assert ids(server, "category=boots&sort(-brand.name,-price)") == ["p03", "p04", "p08"]
    # Products without a brand sort first (null).
    assert ids(server, "sort(brand.name,id)&limit(3)") == ["p05", "p09", "p01"]


def test_sort_filtered_by_unindexed_attribute(server):
    assert ids(server, "note!=null&sort(-note)") == ["p06", "p01", "p03"]


def test_limit_forms(server):
    assert ids(server, "sort(+price)&limit(3)") == BY_PRICE[:3]
    assert ids(server, "sort(+price)&limit(2,5)") == BY_PRICE[2:5]
    assert ids(server, "sort(+price)&limit(8,20)") == BY_PRICE[8:]
    assert ids(server, "sort(+price)&limit(20,30)") == []
    assert ids(server, "limit(0)") == []
    assert ids(server, "sort(-price)&limit(4,4)") == []
    # Functions may come before the conditions.
    assert ids(server, "limit(2)&sort(-price)&category=shoes") == ["p02", "p01"]
    # Paging through an unindexed filter (sorted in memory).
    assert ids(server, "note!=null&sort(note)&limit(1,3)") == ["p01", "p06"]
    assert len(ids(server, "limit(4)")) == 4


def test_limit_with_select_and_join(server):
    rows = server.query("Product", "brand.name=Acme&sort(-price)&limit(1,3)&select(name,brand{name})")
    assert rows == [
        {"name": "Road Runner", "brand": {"name": "Acme"}},
        {"name": "Trail Runner", "brand": {"name": "Acme"}},
    ]


# -- plan headers ----------------------------------------------------------------------------


def test_server_timing_on_indexed_query_without_warning(server):
    r = server.get("/Product/?category=shoes")
    assert r.status_code == 200
    timing = r.headers["Server-Timing"]
    assert timing.startswith('query;desc="index'), timing
    assert ";dur=" in timing
    float(timing.split(";dur=")[1])
    assert r.headers.get("Warning") is None


def test_full_scan_carries_a_warning(server):
    r = server.get("/Product/?note=light")
    assert r.status_code == 200
    assert [x["id"] for x in r.json()] == ["p01"]
    assert "full-scan" in r.headers["Server-Timing"]
    warning = r.headers["Warning"]
    assert warning.startswith("299 ") and "full scan" in warning
    r = server.get("/Product/?brand.name=Acme")
    assert r.status_code == 200 and "full scan" in r.headers["Warning"]


def test_no_filter_is_not_a_flagged_full_scan(server):
    r = server.get("/Product/?sort(-price)&limit(2)")
    assert r.status_code == 200
    assert r.headers.get("Warning") is None
    assert "Server-Timing" in r.headers


def test_delete_by_unindexed_query_also_reports_the_plan(server):
    r = server.delete("/Product/?note=no-such-note")
    assert r.status_code == 200
    assert r.json() == {"deleted": 0}
    assert "full scan" in r.headers["Warning"]
    assert "Server-Timing" in r.headers


@pytest.fixture(scope="module")
def strict_server(module_factory):
    app = module_factory.app(
        SCHEMA, data={"Brand": BRANDS, "Product": PRODUCTS}, yaml="http:\n  allowFullScans: false\n"
    )
    return module_factory.server(app)


def test_full_scans_refused_when_disabled(strict_server):
    for query in ["note=light", "rating=gt=4", "brand.name=Acme", "name=ct=Boot", "category!=shoes"]:
        r = strict_server.get(f"/Product/?{query}")
        assert_problem(r, 400, "full scan", "@indexed")
    r = strict_server.delete("/Product/?note=light")
    assert_problem(r, 400, "full scan")
    assert strict_server.get("/Product/p01").status_code == 200
    # Queries an index serves still run, and so does a listing without conditions.
    assert {x["id"] for x in strict_server.query("Product", "category=shoes&note=light")} == {"p01"}
    assert len(strict_server.query("Product", "")) == len(PRODUCTS)
    assert {x["id"] for x in strict_server.query("Product", "tags=sale")} == {"p01", "p05", "p06"}


# -- errors ----------------------------------------------------------------------------------

SYNTAX_ERRORS = [
    ("price=xx=5", 5, "unknown operator '=xx='"),
    ("category=shoes&&price=1", 15, "expected a term before '&'"),
    ("category=shoes&", 15, "expected a term after '&'"),
    ("[category=shoes", 0, "'[' is never closed"),
    ("category=shoes]", 14, "']' without a matching '['"),
    ("sort(price", 4, "never closed"),
    ("frobnicate(1)", 0, "unknown function 'frobnicate'"),
    ("limit(-1)", 6, "must not be negative"),
    ("limit(5,2)", 8, "limit end 2 is before its start 5"),
    ("limit(x)", 6, "not a non-negative integer"),
    ("name=a%zz", 6, "bad percent escape"),
    ("category", 0, "expected an operator"),
    ("select(name)|category=shoes", 0, "top-level '|'"),
    ("sort(price)&sort(name)", 12, "sort(...) appears more than once"),
    ("[select(name)]", 1, "not allowed inside a group"),
    ("select()", 7, "empty attribute list"),
    ("price=gt=number:abc", 9, "'abc' is not a number"),
    ("select(brand.name)", 12, "write rel{attr}"),
    ("limit(99999999999999999999999)", 6, "too large"),
]


@pytest.mark.parametrize("query,offset,message", SYNTAX_ERRORS, ids=[c[0] for c in SYNTAX_ERRORS])
def test_syntax_error_is_400_naming_the_offset(server, query, offset, message):
    r = server.get(f"/Product/?{query}")
    body = assert_problem(r, 400, message, f"offset {offset}")
    assert body["offset"] == offset
    assert body["title"] == "Bad query"


BINDING_ERRORS = [
    ("Product", "stock=abc", "'abc' is not a 32-bit integer for Int attribute 'stock'"),
    ("Product", "stock=99999999999", "'stock'"),
    ("Product", "price=gt=cheap", "'cheap' is not a number for Float attribute 'price'"),
    ("Product", "active=maybe", "attribute 'active'"),
    ("Product", "released=gt=someday", "attribute 'released'"),
    ("Product", "price.amount=1", "'price' is a Float attribute"),
    ("Product", "brand=acme", "cannot compare relationship 'brand'"),
    ("Product", "sort(brand)", "cannot sort by relationship 'brand'"),
    ("Product", "select(name{x})", "'name' is not a relationship"),
    ("Tag", "nope=1", "unknown attribute 'nope' in sealed table 'Tag'"),
    ("Tag", "select(id,nope)", "'nope'"),
]


@pytest.mark.parametrize("table,query,message", BINDING_ERRORS, ids=[c[0] + ":" + c[1] for c in BINDING_ERRORS])
def test_query_not_fitting_the_schema_is_400(server, table, query, message):
    body = assert_problem(server.get(f"/{table}/?{query}"), 400, message)
    assert body["title"] == "Bad query"


def test_value_error_names_the_offset_of_its_comparison(server):
    body = assert_problem(server.get("/Product/?category=shoes&stock=abc"), 400, "offset 15", "'stock'")
    assert "abc" in body["detail"]


# -- relationships through arrays and across databases ---------------------------------------

LINKS_SCHEMA = """
type Person @table @export {
    id: ID @primaryKey
    name: String @indexed
    items: [Item] @relationship(to: ownerId)
}

type Item @table @export {
    id: ID @primaryKey
    name: String @indexed
    ownerId: ID @indexed
    owner: Person @relationship(from: ownerId)
    labelIds: [ID] @indexed
    labels: [Label] @relationship(from: labelIds)
}

type Label @table @export {
    id: ID @primaryKey
    text: String
    items: [Item] @relationship(to: labelIds)
}
"""


@pytest.fixture(scope="module")
def links(module_factory):
    server = module_factory.server(module_factory.app(LINKS_SCHEMA))
    for pid, name in [("ann", "Ann"), ("bob", "Bob")]:
        assert server.put(f"/Person/{pid}", json={"name": name}).status_code == 201
    for lid, text in [("red", "Red"), ("blue", "Blue")]:
        assert server.put(f"/Label/{lid}", json={"text": text}).status_code == 201
    items = [
        ("i1", "hammer", "bob", ["red", "blue", "gone"]),
        ("i2", "saw", "ann", ["blue"]),
        ("i3", "drill", "bob", []),
    ]
    for iid, name, owner, labels in items:
        assert server.put(f"/Item/{iid}", json={"name": name, "ownerId": owner, "labelIds": labels}).status_code == 201
    return server


def test_relationship_from_an_array_of_keys(links):
    rows = links.query("Item", "select(id,labels{text})&sort(id)")
    # A key with no record ("gone") is left out.
    assert rows == [
        {"id": "i1", "labels": [{"text": "Red"}, {"text": "Blue"}]},
        {"id": "i2", "labels": [{"text": "Blue"}]},
        {"id": "i3", "labels": []},
    ]
    assert {r["id"] for r in links.query("Item", "labels.text=Blue")} == {"i1", "i2"}
    assert {r["id"] for r in links.query("Label", "items.name=saw")} == {"blue"}
    rows = links.query("Label", "select(id,items{id})&sort(id)")
    assert [(r["id"], sorted(i["id"] for i in r["items"])) for r in rows] == [("blue", ["i1", "i2"]), ("red", ["i1"])]


def test_relationship_joins_and_filters_both_ways(links):
    r = links.get("/Item/?select(name,owner{name})&sort(name)")
    assert r.status_code == 200, r
    assert r.json() == [{"name": "drill", "owner": {"name": "Bob"}}, {"name": "hammer", "owner": {"name": "Bob"}},
                        {"name": "saw", "owner": {"name": "Ann"}}]
    r = links.get("/Item/?owner.name=Ann")
    assert r.status_code == 200, r
    assert [x["id"] for x in r.json()] == ["i2"]
    r = links.get("/Person/?items.name=hammer")
    assert r.status_code == 200, r
    assert [x["id"] for x in r.json()] == ["bob"]
    r = links.get("/Person/?select(name,items{name})&sort(name)")
    assert r.status_code == 200, r
    assert [(p["name"], sorted(i["name"] for i in p["items"])) for p in r.json()] == [("Ann", ["saw"]), ("Bob", ["drill", "hammer"])]


def test_sort_by_relationship(links):
    r = links.get("/Item/?sort(owner.name,name)")
    assert r.status_code == 200, r
    # Ann (saw), then Bob (drill, hammer); by name alone it would be drill, hammer, saw.
    assert [x["id"] for x in r.json()] == ["i2", "i3", "i1"]


def test_relationship_across_databases_is_refused_at_start(module_factory):
    # Joins run inside one database's snapshot; a relationship crossing databases is a schema error.
    schema = LINKS_SCHEMA.replace("type Person @table @export", 'type Person @table(database: "people") @export')
    app = module_factory.app(schema)
    for result in (run_microlith("check", app), serve_must_fail(app, module_factory.data_dir())):
        assert result.returncode != 0
        assert "schema.graphql:" in result.stderr
        assert "Person is in database 'people' but Item is in 'data'" in result.stderr, result.stderr


# -- indexes never change answers ------------------------------------------------------------

PAIRS_SCHEMA = """
type Pair @table @export {
    id: ID @primaryKey
    si: String @indexed
    su: String
    ii: Int @indexed
    iu: Int
    fi: Float @indexed
    fu: Float
    bi: Boolean @indexed
    bu: Boolean
    di: Date @indexed
    du: Date
    li: [String] @indexed
    lu: [String]
    xi: ID @indexed
    xu: ID
}
"""

PAIR_VALUES = {
    "s": ["", "a", "ab", "b", "%C3%A9", "a%20b", "1", "null", "A"],
    "i": ["0", "1", "-5", "2147483647", "null", "number:1.5", "string:1"],
    "f": ["0", "1", "0.5", "2.25", "1e10", "-1.5", "null", "string:1"],
    "b": ["true", "false", "null"],
    "d": ["2024-01-01", "2024-01-01T12:00:00Z", "1999-12-31", "0", "null"],
    "l": ["", "a", "ab", "b", "%C3%A9", "null"],
    "x": ["a", "10", "5", "number:10", "null"],
}
PAIR_OPS = ["=", "!=", "=gt=", "=ge=", "=lt=", "=le=", "=sw=", "=ct="]


@pytest.fixture(scope="module")
def pairs(module_factory):
    import random

    rng = random.Random(7)
    strings = ["", "a", "ab", "abc", "b", "B", "\u00e9", "\u00e9a", "z", "a b", "1", "10", "9"]
    pools = {
        "s": strings,
        "i": [-5, 0, 1, 2, 10, 2147483647, -2147483648],
        "f": [-1.5, 0, 0.5, 1, 2, 10, 1e10, 2.25],
        "b": [True, False],
        "d": ["2024-01-01", "2024-01-01T12:00:00Z", "1999-12-31", 0, "2024-06-30T23:59:59.999Z"],
        "x": ["a", "b", "10", 10, 5, "5"],
    }
    server = module_factory.server(module_factory.app(PAIRS_SCHEMA))
    for n in range(60):
        record = {}
        for kind in "sifbdlx":
            roll = rng.random()
            if roll < 0.1:
                continue  # missing
            if roll < 0.2:
                value = None
            elif kind == "l":
                value = [rng.choice(strings) for _ in range(rng.randrange(0, 4))]
            else:
                value = rng.choice(pools[kind])
            record[kind + "i"] = value
            record[kind + "u"] = value
        assert server.put(f"/Pair/r{n:02d}", json=record).status_code == 201
    return server


@pytest.mark.parametrize("kind", sorted(PAIR_VALUES))
def test_indexed_and_unindexed_attributes_answer_alike(pairs, kind):
    # The same values in an indexed and an unindexed attribute: SQL push-down and in-memory
    # evaluation must select the same records in the same order.
    differences = []
    for op in PAIR_OPS:
        for value in PAIR_VALUES[kind]:
            a = pairs.get(f"/Pair/?{kind}i{op}{value}")
            b = pairs.get(f"/Pair/?{kind}u{op}{value}")
            if a.status_code != b.status_code or (a.status_code == 200 and [x["id"] for x in a.json()] != [x["id"] for x in b.json()]):
                differences.append(f"{kind}?{op}{value}: indexed {a.status_code} {a.text[:80]} / unindexed {b.status_code} {b.text[:80]}")
    for direction in "+-":
        if kind == "l":
            continue
        a = [x["id"] for x in pairs.query("Pair", f"sort({direction}{kind}i)")]
        b = [x["id"] for x in pairs.query("Pair", f"sort({direction}{kind}u)")]
        if a != b:
            differences.append(f"sort({direction}{kind}): {a} vs {b}")
    assert not differences, "\n".join(differences)
