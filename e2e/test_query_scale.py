"""Queries that must stay cheap as the data grows, on the storefront at `--scale 100` (101,300
products): `/api/products` answered a page at a time, keyset pages deep in the table, and the
planner's choice for the related-products query (filter + sort + small limit).

One server for the module: seeding 101,300 products takes a while (measured: 270 s for a
release build pinned to one core of a two-core machine other builds were using; a debug build is
slower), so every test shares it. Set STOREFRONT_BIN to test another binary, and QUERY_SCALE_SEEDED_DATA to a data
folder a `storefront serve --scale 100` filled before (copied, never changed) to skip seeding."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import pytest

from microlith_e2e import REPO, free_port, http_request

STOREFRONT_BIN = os.environ.get("STOREFRONT_BIN") or str(REPO / "Apps" / "Storefront" / ".build" / "debug" / "storefront")
SCALE = 100
PRODUCTS = 1013 * SCALE
# Products per category at scale 1, in category order (c1 … c8): see CatalogGenerator.
PER_CATEGORY = [111, 108, 110, 82, 85, 121, 131, 265]
SEED_TIMEOUT_S = float(os.environ.get("QUERY_SCALE_SEED_TIMEOUT", "900"))

pytestmark = [
    pytest.mark.skipif(
        not os.path.exists(STOREFRONT_BIN) and not os.environ.get("SHOP_BIN_REQUIRED"),
        reason=f"the storefront is not built ({STOREFRONT_BIN}); scripts/test builds it",
    ),
    # The first test also waits for the seeding (the module's fixture), bounded by its own timeout.
    pytest.mark.timeout(SEED_TIMEOUT_S + 120),
]


def product_id(index: int) -> str:
    return f"p{index + 1:06d}"


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    port = free_port()
    data = tmp_path_factory.mktemp("scale-shop")
    seeded = os.environ.get("QUERY_SCALE_SEEDED_DATA")
    if seeded:
        shutil.copytree(seeded, data / "data")
    log = open(data / "shop.log", "w")
    proc = subprocess.Popen(
        [STOREFRONT_BIN, "serve", "--topology", "microlith", "--port", str(port), "--data-dir", str(data / "data"),
         "--app", str(REPO / "Apps" / "Storefront" / "Sources" / "Storefront" / "app"), "--scale", str(SCALE), "--log-level", "error"],
        stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        while True:
            assert proc.poll() is None, (data / "shop.log").read_text()
            assert time.monotonic() - started < SEED_TIMEOUT_S, f"not serving after {SEED_TIMEOUT_S} s"
            try:
                if http_request(port, "GET", f"/api/p/{product_id(PRODUCTS - 1)}", timeout=5).status_code == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        print(f"\nstorefront at scale {SCALE}: serving after {time.monotonic() - started:.1f} s")
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def plan_of(response) -> str:
    match = re.search(r'desc="([^"]*)"', response.headers.get("Server-Timing", ""))
    assert match, response.headers
    return match.group(1)


def test_api_products_pages_through_every_id(shop):
    first = http_request(shop, "GET", "/api/products")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["ids"] == [product_id(i) for i in range(10_000)]
    assert body["next"] == "/api/products?after=p010000&limit=10000"
    assert first.headers.get("Link") == '</api/products?after=p010000&limit=10000>; rel="next"'

    seen: list[str] = []
    path = "/api/products?limit=7000"
    pages = 0
    while path:
        page = http_request(shop, "GET", path)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += body["ids"]
        path = body.get("next")
        pages += 1
        assert pages <= 20, "the pages never end"
    assert pages == 15
    assert seen == [product_id(i) for i in range(PRODUCTS)]

    last = http_request(shop, "GET", f"/api/products?after={product_id(PRODUCTS - 3)}&limit=2")
    assert last.json() == {"ids": [product_id(PRODUCTS - 2), product_id(PRODUCTS - 1)]}
    assert last.headers.get("Link") is None
    assert http_request(shop, "GET", f"/api/products?after={product_id(PRODUCTS - 1)}").json() == {"ids": []}


def test_api_products_refuses_bad_limits(shop):
    for limit in ("0", "10001", "-5", "many"):
        response = http_request(shop, "GET", f"/api/products?limit={limit}")
        assert response.status_code == 400, (limit, response.text)
        assert "limit" in response.text


def test_keyset_pages_deep_in_the_table_cost_what_the_first_does(shop):
    def keyset(after: str | None, n: int, extra: str = "") -> list[str]:
        cursor = f"id=gt=string:{after}&" if after else ""
        response = http_request(shop, "GET", f"/Product/?{extra}{cursor}select(id)&sort(+id)&limit({n})")
        assert response.status_code == 200, response.text
        assert plan_of(response).startswith(("index", "table-scan")), plan_of(response)
        return [r["id"] for r in response.json()]

    assert keyset(None, 3) == [product_id(0), product_id(1), product_id(2)]
    deep = keyset(product_id(100_000), 1000)
    assert deep == [product_id(i) for i in range(100_001, 101_001)]
    assert keyset(product_id(PRODUCTS - 3), 1000) == [product_id(PRODUCTS - 2), product_id(PRODUCTS - 1)]
    # With a condition: the primary key is the sort index, walked from the cursor.
    c8_start = sum(PER_CATEGORY[:7]) * SCALE
    response = http_request(shop, "GET", f"/Product/?categoryId=c8&id=gt=string:{product_id(90_000)}&select(id)&sort(+id)&limit(5)")
    assert [r["id"] for r in response.json()] == [product_id(i) for i in range(90_001, 90_006)]
    assert plan_of(response) == "index,walk(id)"
    response = http_request(shop, "GET", f"/Product/?categoryId=c1&id=gt=string:{product_id(90_000)}&select(id)&sort(+id)&limit(5)")
    assert response.json() == []
    assert c8_start < 90_000


def test_offset_pages_are_exact(shop):
    response = http_request(shop, "GET", "/Product/?select(id)&sort(+id)&limit(100000,100010)")
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()] == [product_id(i) for i in range(100_000, 100_010)]
    # A filter + sort + offset: the c8 products at positions 20,000 … 20,004.
    response = http_request(shop, "GET", "/Product/?categoryId=c8&sort(+position)&select(id,position)&limit(20000,20005)")
    c8_start = sum(PER_CATEGORY[:7]) * SCALE
    assert response.json() == [{"id": product_id(c8_start + p), "position": p} for p in range(20_000, 20_005)]


def test_related_products_come_in_order_from_the_composite_index(shop):
    # The storefront declares @index(attributes: ["categoryId", "position"]).
    c8_start = sum(PER_CATEGORY[:7]) * SCALE
    c1_size = PER_CATEGORY[0] * SCALE
    for after in (500, 20_000, 26_400):
        response = http_request(shop, "GET", f"/Product/?categoryId=c8&position=gt={after}&sort(+position)&limit(4)")
        assert response.status_code == 200, response.text
        assert plan_of(response) == "index(categoryId+position),in-order"
        assert [r["id"] for r in response.json()] == [product_id(c8_start + p) for p in range(after + 1, after + 5)]
    # The last products of a small category: the entries past them belong to larger categories,
    # which a walk of the position index alone would have to step over.
    response = http_request(shop, "GET", f"/Product/?categoryId=c1&position=gt={c1_size - 3}&sort(+position)&limit(4)")
    assert plan_of(response) == "index(categoryId+position),in-order"
    assert [r["id"] for r in response.json()] == [product_id(p) for p in range(c1_size - 2, c1_size)]
    # Past the category's last position: nothing, still without reading the category.
    response = http_request(shop, "GET", "/Product/?categoryId=c8&position=gt=50000&sort(+position)&limit(4)")
    assert response.json() == []
    assert plan_of(response) == "index(categoryId+position),in-order"
    # A product page shows them.
    detail = http_request(shop, "GET", f"/api/p/{product_id(c8_start + 700)}")
    assert detail.status_code == 200, detail.text
    assert [p["id"] for p in detail.json()["related"]] == [product_id(c8_start + p) for p in range(701, 705)]


def test_a_deep_listing_page_comes_from_the_name_index_in_order(shop):
    # @index(attributes: ["categoryId", "name"]): page 6,500 of c8's name order skips index entries.
    response = http_request(shop, "GET", "/Product/?categoryId=c8&sort(+name)&select(id,name,categoryId)&limit(26000,26004)")
    assert response.status_code == 200, response.text
    assert plan_of(response) == "index(categoryId+name),in-order"
    rows = response.json()
    assert len(rows) == 4 and all(r["categoryId"] == "c8" for r in rows)
    before = http_request(shop, "GET", "/Product/?categoryId=c8&sort(+name)&select(id,name)&limit(25999,26000)").json()
    names = [(r["name"], r["id"]) for r in before + rows]
    assert names == sorted(names)


def test_an_equality_holding_few_records_sorts_them(shop):
    # `featured` holds 4 products per category (32): counted at once, then sorted.
    response = http_request(shop, "GET", "/Product/?featured=true&sort(+position)&select(id)&limit(40)")
    assert response.status_code == 200, response.text
    assert len(response.json()) == 32
    assert plan_of(response) == "index(featured),sql-sort"
