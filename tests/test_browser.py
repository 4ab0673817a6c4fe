"""A real headless Chromium (Debian's, driven by Playwright) against a real uvicorn process."""

import re

from helpers import Server, make_sms_project, set_config
from playwright.sync_api import expect

from activelabel.project import Project

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
        page.keyboard.press("s")  # skip: not a label, counted apart
        expect(page.locator("#passed")).to_have_text("1")
        page.keyboard.press("u")  # unsure
        expect(page.locator("#passed")).to_have_text("2")
        expect(page.locator("#today")).to_have_text("1")  # spam undone, then ham: one label today

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


def log_in(context, url, token):
    page = context.new_page()
    page.goto(url + "/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(url + "/label")
    page.wait_for_load_state()  # label.js (deferred) listens to the keys from here on: a key pressed earlier is lost
    return page


def test_skip_abandon_and_the_next_batch_appears_without_reload(tmp_path, browser):
    """A skip goes to someone else, an abandoned item expires, the batch closes and the next one arrives by polling.

    A skips an item; B opens the labeling page (and is served that item) and
    walks away; A labels the rest of the batch. Nobody labeling now can take
    what is left (A skipped it, B's assignment expires after 1.8 s), so the
    batch closes, the retrainer trains, and the waiting card on A's page is
    replaced by the next batch's item without the page navigating. A is never
    shown the skipped item again.
    """
    folder = make_sms_project(tmp_path, batch_size=8)
    set_config(folder, assignment_minutes=0.03, test_share=0.0, reserve_batches=0)
    with Project.open(folder) as p:
        p.train(force=True)  # publish the batch again, now without a reserve
        token_a, token_b = p.add_annotator("a"), p.add_annotator("b")
    with Server(folder) as server:
        ctx_a = browser.new_context()
        page = log_in(ctx_a, server.url, token_a)
        navigations = []
        page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
        page.evaluate("window.__sameDocument = 'still here'")
        card = page.locator("article.item")
        skipped = card.get_attribute("data-item")
        seen_by_a = [skipped]

        page.keyboard.press("s")  # skip
        expect(page.locator("#passed")).to_have_text("1")
        expect(card).to_have_attribute("data-item", re.compile(r"^(?!" + skipped + r"$)"))

        ctx_b = browser.new_context()  # B opens the page, is served an item, and walks away
        page_b = log_in(ctx_b, server.url, token_b)
        held_by_b = page_b.locator("article.item").get_attribute("data-item")
        assert held_by_b == skipped  # the skipped item goes to someone else, first in rank
        ctx_b.close()

        labeled = 0
        while page.locator("#nothing").count() == 0:  # label the rest of the batch with the keyboard
            current = card.get_attribute("data-item")
            seen_by_a.append(current)
            page.keyboard.press("2")  # ham
            labeled += 1
            expect(page.locator("#today")).to_have_text(str(labeled))
            assert labeled <= 9, "the batch of 8 never ran out"
        first_batch = set(seen_by_a) | {held_by_b}
        assert len(first_batch) == 8 and len(set(seen_by_a)) == len(seen_by_a)

        expect(page.locator("#nothing")).to_be_visible()  # the waiting card says why
        assert page.locator("#nothing").inner_text().strip()
        expect(card).to_have_count(1, timeout=60_000)  # polled in by HTMX, no reload
        new = card.get_attribute("data-item")
        assert new not in first_batch
        assert page.evaluate("window.__sameDocument") == "still here"
        assert navigations == []
        seen_by_a.append(new)
        assert seen_by_a.count(skipped) == 1  # never shown the item A skipped again

        events = web_events(folder)
        mine = events[events["item_id"] == int(skipped)]
        assert list(mine["answer"]) == ["skip"]  # B abandoned it: no answer of B's
        ctx_a.close()
