"""The studio (`/studio`) in a real browser: Debian's chromium, driven headless by Playwright
(launched with `executable_path`, so no browser is downloaded). Sign in, browse a table, create,
edit and delete a record, run a query and see its plan, watch a change another client makes appear
live, read the metrics; all by keyboard where a user would type."""

from __future__ import annotations

import base64
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

SCHEMA = """
type Note @table @export {
    id: ID @primaryKey
    text: String
    n: Int @indexed
}

type Event @table(database: "events") @export(name: "Events") {
    id: ID @primaryKey
    kind: String
}

type Counter @table @export {
    id: Int @primaryKey
    value: Int
}
"""

ADMIN_ENV = {"MICROLITH_ADMIN_USER": "root", "MICROLITH_ADMIN_PASSWORD": "pw-root-123"}
ADMIN = {"Authorization": "Basic " + base64.b64encode(b"root:pw-root-123").decode()}
ROLES = "admin:\n  super_user: true\n"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "no chromium: scripts/test installs Debian's chromium package"
    return path


@pytest.fixture
def studio(factory):
    app = factory.app(SCHEMA)
    (app / "roles.yaml").write_text(ROLES)
    server = factory.server(app, env=ADMIN_ENV)
    for i in range(1, 31):
        assert server.put(f"/Note/n{i:02}", json={"id": f"n{i:02}", "text": f"note {i}", "n": i}, headers=ADMIN).status_code == 201
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True, args=["--no-sandbox"])
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url("/studio"))
        yield server, page
        browser.close()
        assert not errors, errors


def sign_in(page):
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#username", "root")
    page.fill("#password", "pw-root-123")
    page.keyboard.press("Enter")
    expect(page.locator("#app")).to_be_visible()


def test_a_user_signs_in_and_edits_records(studio):
    server, page = studio
    # Without credentials the studio asks for them; a wrong password is said so.
    page.fill("#username", "root")
    page.fill("#password", "wrong")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-status")).not_to_be_empty()
    sign_in(page)
    expect(page.locator("nav")).to_contain_text("Database data")
    expect(page.locator("nav")).to_contain_text("Database events")
    expect(page.locator('nav button[data-table="Note"] .count')).to_have_text("30")

    # The first page of records, then the next, in key order.
    expect(page.locator("#records tbody tr")).to_have_count(25)
    expect(page.locator("#records tbody tr").first).to_have_attribute("data-key", "n01")
    page.click("#next")
    expect(page.locator("#records tbody tr")).to_have_count(5)
    expect(page.locator("#records-range")).to_have_text("records 26–30")
    page.click("#prev")

    # A new record, typed in.
    page.click("#new")
    page.keyboard.type("from-studio")
    page.fill("#record-json", '{"text": "made in the studio", "n": 99}')
    page.click("#save")
    expect(page.locator("#records-status")).to_have_text("saved from-studio")
    assert server.get("/Note/from-studio", headers=ADMIN).json() == {"id": "from-studio", "text": "made in the studio", "n": 99}
    expect(page.locator('nav button[data-table="Note"] .count')).to_have_text("31")
    # A new record with a key already taken is refused, not written over.
    page.click("#new")
    page.keyboard.type("from-studio")
    page.fill("#record-json", '{"text": "again"}')
    page.click("#save")
    expect(page.locator("#records-status")).to_have_class("status bad")
    assert server.get("/Note/from-studio", headers=ADMIN).json()["text"] == "made in the studio"
    expect(page.locator('nav button[data-table="Note"] .count')).to_have_text("31")
    page.click("#close")

    # Edit one by keyboard: focus its row, Enter opens it.
    row = page.locator('#records tr[data-key="n03"]')
    row.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#editor-title")).to_have_text("Record n03")
    page.fill("#record-json", '{"text": "edited", "n": 3}')
    page.click("#save")
    expect(page.locator("#records-status")).to_have_text("saved n03")
    assert server.get("/Note/n03", headers=ADMIN).json()["text"] == "edited"

    # Bad JSON and a record the schema refuses: said, nothing written.
    page.locator('#records tr[data-key="n04"]').click()
    page.fill("#record-json", "{not json")
    page.click("#save")
    expect(page.locator("#records-status")).to_contain_text("not JSON")
    page.fill("#record-json", '{"n": "four"}')
    page.click("#save")
    expect(page.locator("#records-status")).to_contain_text("attribute 'n'")
    assert server.get("/Note/n04", headers=ADMIN).json()["n"] == 4

    # Delete, confirmed.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete")
    expect(page.locator("#records-status")).to_have_text("deleted n04")
    assert server.get("/Note/n04", headers=ADMIN).status_code == 404
    expect(page.locator('nav button[data-table="Note"] .count')).to_have_text("30")


def test_a_query_shows_its_plan_and_a_change_appears_live(studio):
    server, page = studio
    sign_in(page)
    page.click("#tab-query")
    page.fill("#query", "Note/?n=gt=25&sort(-n)")
    page.keyboard.press("Enter")
    expect(page.locator("#query-plan")).to_contain_text("5 records")
    expect(page.locator("#query-plan")).to_contain_text("plan index")
    expect(page.locator("#query-result tbody tr")).to_have_count(5)
    page.fill("#query", "Note/?n=lt=oops")
    page.keyboard.press("Enter")
    expect(page.locator("#query-plan")).to_have_class("status bad")

    # Arrow keys move between the tabs.
    page.focus("#tab-query")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-live")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#live-status")).to_have_text("listening")
    assert server.put("/Note/live-one", json={"id": "live-one", "text": "from another client"}, headers=ADMIN).status_code == 201
    expect(page.locator("#events li").first).to_contain_text("live-one")
    expect(page.locator("#events li").first).to_contain_text("put")
    assert server.delete("/Note/n10", headers=ADMIN).status_code in (200, 204)
    expect(page.locator("#events li").first).to_contain_text("delete")

    page.click("#tab-metrics")
    expect(page.locator('[data-chart="requests"] .value')).not_to_have_text("0", timeout=10_000)
    page.click("#tab-jobs")
    expect(page.locator("#jobs")).to_contain_text("counts")
    page.click("#tab-cluster")
    expect(page.locator("#cluster")).to_contain_text("replicating")


def test_a_table_with_integer_keys_is_edited_too(studio):
    server, page = studio
    sign_in(page)
    page.click('nav button[data-table="Counter"]')
    expect(page.locator("#records-title")).to_have_text("Counter")
    page.click("#new")
    page.keyboard.type("7")
    page.fill("#record-json", '{"value": 70}')
    page.click("#save")
    expect(page.locator("#records-status")).to_have_text("saved 7")
    assert server.get("/Counter/7", headers=ADMIN).json() == {"id": 7, "value": 70}
    page.locator('#records tr[data-key="7"]').click()
    page.fill("#record-json", '{"value": 71}')
    page.click("#save")
    expect(page.locator("#records-status")).to_have_text("saved 7")
    assert server.get("/Counter/7", headers=ADMIN).json() == {"id": 7, "value": 71}
