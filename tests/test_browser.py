"""A real headless Chromium (Debian's, driven by Playwright) against a real uvicorn process."""

import re
import shutil

import pytest
from playwright.sync_api import expect, sync_playwright

from activelabel.project import Project

from helpers import Server, make_sms_project

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    path = shutil.which("chromium")
    assert path, "Debian's chromium is required (.ci/run installs it)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def web_events(folder):
    with Project.open(folder) as p:
        events = p.state().events
    return events[events["source"] == "web"]


def test_label_with_the_keyboard_undo_and_admin(tmp_path, browser):
    folder = make_sms_project(tmp_path)
    with Project.open(folder) as p:
        ann, admin = p.add_annotator("ann"), p.add_annotator("boss", "admin")
    with Server(folder) as server:
        page = browser.new_page(viewport={"width": 375, "height": 740})  # phone width
        page.goto(server.url + "/")
        page.fill("#token", ann)
        page.click("button[type=submit]")
        expect(page).to_have_url(server.url + "/label")
        card = page.locator("article.item")
        first = card.get_attribute("data-item")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        expect(page.locator("#today")).to_have_text("0")

        page.keyboard.press("1")  # spam
        expect(page.locator("#today")).to_have_text("1")
        second = card.get_attribute("data-item")
        assert second != first
        page.keyboard.press("z")  # undo: the first item comes back
        expect(card).to_have_attribute("data-item", first)
        page.keyboard.press("2")  # ham
        expect(card).to_have_attribute("data-item", re.compile(r"^(?!" + first + r"$)"))
        page.keyboard.press("s")  # skip
        expect(page.locator("#today")).to_have_text("3")
        page.keyboard.press("u")  # unsure
        expect(page.locator("#today")).to_have_text("4")

        events = web_events(folder)
        assert list(events["answer"]) == ["label", "retract", "label", "skip", "unsure"]
        assert [events["label"].iloc[0], events["label"].iloc[2]] == ["spam", "ham"]
        assert events["label"].iloc[1:2].isna().all() and events["label"].iloc[3:].isna().all()
        assert events["item_id"].iloc[2] == int(first) and events["retracts_id"].iloc[1] == events["id"].iloc[0]
        assert (events["seconds"].dropna() >= 0).all()

        admin_page = browser.new_context().new_page()
        admin_page.goto(server.url + "/login")
        admin_page.fill("#token", admin)
        admin_page.click("button[type=submit]")
        expect(admin_page).to_have_url(server.url + "/admin")
        expect(admin_page.locator("#cycle-table")).to_contain_text("40")
        expect(admin_page.locator("#annotators")).to_contain_text("ann")
        assert admin_page.locator("svg").count() >= 1
        expect(admin_page.locator("#advice")).to_contain_text("continue")
        page.close()
