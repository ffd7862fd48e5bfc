"""Modules across processes, with the example app in examples/shop-modules: the same operation
answered by one microlith and by the app split into two processes (roles), errors that keep
their meaning, and a callee that goes away."""

from __future__ import annotations

import time

import pytest

from microlith_e2e import MicrolithServer, assert_problem
from shop_app import CART, EXPECTED_TOTAL, ShopServer, copy_app, requires_shop

pytestmark = requires_shop


@pytest.fixture
def servers(tmp_path):
    started: list[MicrolithServer] = []

    def start(app, roles=None):
        server = ShopServer(app, tmp_path / f"data-{len(started)}", roles)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def total(server) -> dict:
    r = server.post("/_operations/cart/total", json=CART)
    assert r.status_code == 200, r.text
    return r.json()


def test_one_process_and_two_processes_answer_the_same(servers, tmp_path):
    single = servers(copy_app(tmp_path))
    answer = total(single)
    assert answer["totalCents"] == EXPECTED_TOTAL
    assert [line["sku"] for line in answer["lines"]] == ["bread", "apple", "cheese"]

    pricing = servers(copy_app(tmp_path / "p"), roles="pricing")
    shop = servers(copy_app(tmp_path / "s", pricing.port), roles="api,cart")
    assert total(shop) == answer
    # The pricing process serves its own operation, and not the cart's.
    assert pricing.post("/_operations/pricing/quote", json={"sku": "apple", "quantity": 1}).json()["totalCents"] == 50
    assert_problem(pricing.post("/_operations/cart/total", json=CART), 404, "no module named 'cart' runs in this process")


def test_errors_keep_their_meaning_across_processes(servers, tmp_path):
    single = servers(copy_app(tmp_path))
    pricing = servers(copy_app(tmp_path / "p"), roles="pricing")
    shop = servers(copy_app(tmp_path / "s", pricing.port), roles="api,cart")
    bad = {"items": [{"sku": "caviar", "quantity": 1}]}
    for server in (single, shop):
        problem = assert_problem(server.post("/_operations/cart/total", json=bad), 404, "no price for 'caviar'")
        assert problem["code"] == "notFound"
        problem = assert_problem(server.post("/_operations/cart/total", json={"items": []}), 400, "the cart is empty")
        assert problem["code"] == "badRequest"
        problem = assert_problem(server.post("/_operations/cart/total", json={"items": [{"sku": 5}]}), 400, "not a valid Cart")
        assert problem["code"] == "badRequest"
        assert_problem(server.post("/_operations/cart/nope", json={}), 404, "has no operation 'nope'")


def test_a_stopped_callee_fails_cleanly_and_the_caller_keeps_serving(servers, tmp_path):
    pricing = servers(copy_app(tmp_path / "p"), roles="pricing")
    shop = servers(copy_app(tmp_path / "s", pricing.port), roles="api,cart")
    assert total(shop)["totalCents"] == EXPECTED_TOTAL
    pricing.kill()
    started = time.monotonic()
    r = shop.post("/_operations/cart/total", json=CART)
    assert time.monotonic() - started < 10, "the call must give up at its deadline"
    problem = assert_problem(r, r.status_code)
    assert r.status_code in (503, 504), r.text
    assert problem["code"] in ("unavailable", "timeout")
    assert shop.get("/health").status_code == 200


def test_operations_are_in_openapi(servers, tmp_path):
    single = servers(copy_app(tmp_path))
    spec = single.get("/openapi.json").json()
    assert "/_operations/cart/total" in spec["paths"]
    assert "/_operations/pricing/quote" in spec["paths"]
    assert "/Order/{id}" in spec["paths"] or any(p.startswith("/Order") for p in spec["paths"])
    from openapi_spec_validator import validate

    validate(spec)


def test_unknown_roles_stop_the_start(tmp_path):
    server = ShopServer(copy_app(tmp_path), tmp_path / "data", roles="api,billing")
    with pytest.raises(Exception) as failure:
        server.start(timeout=20)
    assert "unknown role 'billing'" in str(failure.value)
