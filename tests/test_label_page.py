"""The annotator's page in a real headless Chromium against a real uvicorn process: errors that are shown
instead of swallowed, guidelines, history and corrections, the model's suggestion, notes, long and
spoofing texts, dark mode and the phone layout."""


import pandas as pd
from helpers import Server, make_sms_project, set_config
from playwright.sync_api import expect
from sqlalchemy import select

from activelabel.project import Project, init_project
from activelabel.store.schema import Annotation, Assignment, ItemNote

def log_in(page, url, token):
    page.goto(url + "/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: not url.endswith("/login"))
    page.wait_for_load_state()  # label.js (deferred) listens to the keys from here on
    return page


def web_events(folder, item_id=None):
    with Project.open(folder) as p, p.store.session(readonly=True) as s:
        query = select(Annotation.item_id, Annotation.answer, Annotation.label).where(Annotation.source == "web")
        if item_id is not None:
            query = query.where(Annotation.item_id == item_id)
        return [tuple(r) for r in s.execute(query.order_by(Annotation.id))]


def test_errors_are_shown_and_an_answer_survives_a_stopped_server(tmp_path, browser):
    """403 (a forged CSRF token): the server's reason is shown and nothing is stored. 401 (the session cookie
    gone): a message with a link to log in again, the item still on screen, and after logging in the same
    item is served again. A stopped server: a message with a countdown, further key presses say the answer
    is waiting, and once the server is back the answer is resent by itself and stored exactly once."""
    folder = make_sms_project(tmp_path)
    with Project.open(folder) as p:
        token = p.add_annotator("ann")
    server = Server(folder, log=tmp_path / "server.log").start()
    try:
        context = browser.new_context()
        page = log_in(context.new_page(), server.url, token)
        expect(page).to_have_url(server.url + "/label")
        card, status = page.locator("article.item"), page.locator("#status")
        first = card.get_attribute("data-item")
        expect(status).to_be_hidden()

        page.evaluate("document.querySelectorAll('#work input[name=csrf]').forEach(i => { i.value = 'forged'; })")
        page.keyboard.press("1")
        expect(status).to_contain_text("403")
        expect(status).to_contain_text("CSRF")
        expect(card).to_have_attribute("data-item", first)
        assert web_events(folder) == []

        page.reload()  # fresh forms
        expect(status).to_be_hidden()
        context.clear_cookies()  # the session ends (as after an idle timeout or a revoke)
        page.keyboard.press("1")
        expect(status).to_contain_text("session has ended")
        expect(page.locator("#item-text")).to_be_visible()  # the unanswered item stays on screen
        expect(card).to_have_attribute("data-item", first)
        page.keyboard.press("2")  # pressing on says so again rather than doing nothing
        expect(status).to_contain_text("session has ended")
        assert web_events(folder) == []
        status.get_by_role("link", name="log in again").click()
        expect(page).to_have_url(server.url + "/login")
        page.fill("#token", token)
        page.click("button[type=submit]")
        expect(page).to_have_url(server.url + "/label")
        expect(card).to_have_attribute("data-item", first)  # the same item, still theirs

        server.kill()
        page.keyboard.press("1")  # spam
        expect(status).to_contain_text("Cannot reach the server")
        expect(status).to_contain_text("“spam” is kept and will be sent again")
        page.keyboard.press("2")  # not sent: the page says the first answer is waiting
        expect(status).to_contain_text("“spam” is kept")
        expect(card).to_have_attribute("data-item", first)
        server = Server(folder, port=server.port, log=tmp_path / "server2.log").start()
        expect(status).to_contain_text("was saved", timeout=40_000)
        expect(card).not_to_have_attribute("data-item", first)
        assert web_events(folder) == [(int(first), "label", "spam")]  # resent once, stored once
        context.close()
    finally:
        server.stop()


def test_guidelines_suggestions_history_correction_and_notes(tmp_path, browser):
    """The project's name is on the page; G shows the guidelines and label descriptions rendered from Markdown
    (raw HTML shown as text, never run); the model's suggestion is shown on pool items and never on test
    items; H shows one's own answers and a correction from there becomes the item's label in the store, with
    one assignment; C opens the comment box and a comment and a flag are stored and reach the review page."""
    folder = make_sms_project(tmp_path, seed_test=30)
    set_config(folder, show_suggestions=True, test_share=0.5,
               guidelines="# How to label\n**Spam** is unwanted advertising.\n\n<script>alert(1)</script>",
               label_descriptions={"spam": "Unwanted *ads*, prizes, premium numbers", "ham": "Everything else"})
    with Project.open(folder) as p:
        token, admin = p.add_annotator("ann"), p.add_annotator("boss", "admin")
        split = p.state().items.set_index("id")["split"].to_dict()
    with Server(folder, log=tmp_path / "server.log") as server:
        page = log_in(browser.new_context().new_page(), server.url, token)
        expect(page).to_have_url(server.url + "/label")
        expect(page.locator("#header-project")).to_have_text("proj")
        assert "proj" in page.title()

        dialog = page.locator("#guidelines")
        expect(dialog).to_be_hidden()
        page.keyboard.press("g")
        expect(dialog).to_be_visible()
        expect(dialog.locator("h1")).to_have_text("How to label")
        expect(dialog.locator("strong")).to_have_text("Spam")
        expect(dialog).to_contain_text("<script>alert(1)</script>")  # shown as text
        assert dialog.locator("script").count() == 0
        expect(page.locator("#label-descriptions em")).to_have_text("ads")
        page.keyboard.press("Escape")
        expect(dialog).to_be_hidden()
        page.click("#guidelines-button")
        expect(dialog).to_be_visible()
        page.keyboard.press("g")
        expect(dialog).to_be_hidden()

        card = page.locator("article.item")
        seen = {"pool": 0, "test": 0}
        answered = []
        for n in range(6):
            item = int(card.get_attribute("data-item"))
            suggestion = page.locator("#suggestion")
            if split[item] == "test":
                expect(suggestion).to_have_count(0)
                expect(page.locator("#suggestion-pending")).to_have_count(0)
                assert page.request.get(f"{server.url}/label/suggestion/{item}").status == 404  # not even asked
            else:  # the first one may arrive after its item: the server loads the model in the background
                expect(suggestion).to_contain_text("% sure", timeout=30_000)
                label = page.locator("#suggested-label").inner_text()
                assert label in ("spam", "ham")
                expect(page.locator("button.suggested")).to_contain_text(label)
            seen[split[item]] += 1
            key = "1" if n % 2 == 0 else "2"
            page.keyboard.press(key)
            answered.append((item, "spam" if key == "1" else "ham"))
            expect(card).not_to_have_attribute("data-item", str(item))
        assert seen == {"pool": 3, "test": 3}

        page.keyboard.press("h")
        rows = page.locator("#history .history-row")
        expect(rows).to_have_count(6)
        expect(rows.first).to_have_attribute("data-item", str(answered[-1][0]))
        item, given = answered[0]
        row = page.locator(f'#history .history-row[data-item="{item}"]')
        expect(row.locator(".answer-given")).to_have_text(given)
        row.locator("select").select_option(f"label:{'ham' if given == 'spam' else 'spam'}")
        row.get_by_role("button", name="correct").click()
        expect(page.locator("#history-message")).to_contain_text("Corrected")
        corrected = "ham" if given == "spam" else "spam"
        expect(rows.first).to_have_attribute("data-item", str(item))  # the correction is the newest answer
        expect(rows.first.locator(".tag")).to_have_text("changed")
        assert web_events(folder, item) == [(item, "label", given), (item, "retract", None), (item, "label", corrected)]
        with Project.open(folder) as p:
            assert p.state().items.set_index("id").loc[item, "label"] == corrected
            with p.store.session(readonly=True) as s:
                assert s.scalars(select(Assignment.outcome).where(Assignment.item_id == item)).all() == ["label"]

        current = int(card.get_attribute("data-item"))
        page.keyboard.press("c")
        expect(page.locator("#note-text")).to_be_focused()
        page.keyboard.type("the message is cut off")  # typing in the box answers nothing
        page.click("#comment-button")
        expect(page.locator("#note-result")).to_contain_text("Comment saved")
        expect(page.locator("#note-text")).to_have_value("")
        page.click("#flag-button")
        expect(page.locator("#note-result")).to_contain_text("Flagged")
        expect(card).to_have_attribute("data-item", str(current))
        with Project.open(folder) as p, p.store.session(readonly=True) as s:
            stored = s.execute(select(ItemNote.item_id, ItemNote.kind, ItemNote.text).order_by(ItemNote.id)).all()
        assert [tuple(r) for r in stored] == [(current, "comment", "the message is cut off"), (current, "flag", "")]

        admin_page = log_in(browser.new_context().new_page(), server.url, admin)
        admin_page.goto(server.url + "/admin/review?show=flag")
        expect(admin_page.locator(f'#review tr[data-item="{current}"]')).to_contain_text("the message is cut off")


def test_long_and_spoofing_texts_dark_mode_and_the_phone(tmp_path, browser):
    """A 1 MB text scrolls inside its box with the answer buttons on screen (phone and desktop); a right-to-left
    override and a zero-width space show as markers; dark mode follows the system; a 375 px phone never
    scrolls sideways and hides the keyboard hints, which a desktop shows."""
    long_text = "lorem ipsum dolor sit amet " * 40_000  # about 1 MB
    frame = pd.DataFrame({"id": ["long", "rtl", "zw", "plain"],
                          "text": [long_text, "invoice_\u202egnp.exe is attached", "pay\u200bpal login", "hello"]})
    frame.to_parquet(tmp_path / "items.parquet")  # a 1 MB field is beyond what CSV readers take
    p = init_project(tmp_path / "texts", ["spam", "ham"], batch_size=4, test_share=0.0)
    p.import_items(tmp_path / "items.parquet", text_column="text", id_column="id", test_size=0)
    token = p.add_annotator("ann")
    p.close()
    with Server(tmp_path / "texts", log=tmp_path / "server.log") as server:
        phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                    color_scheme="dark")
        page = log_in(phone.new_page(), server.url, token)
        expect(page).to_have_url(server.url + "/label")
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
        expect(page.locator("#keys")).to_be_hidden()
        card, seen = page.locator("article.item"), set()
        while page.locator("#item-text").count():
            text = page.locator("#item-text")
            shown = text.inner_text()
            assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
            box = page.locator("#buttons button").last.bounding_box()
            assert box["y"] + box["height"] <= 740, box  # the buttons are on screen
            if shown.startswith("lorem"):
                seen.add("long")
                assert page.evaluate("(b => b.scrollHeight > 20 * b.clientHeight)(document.getElementById('item-content'))")
            elif "invoice" in shown:
                seen.add("rtl")
                expect(text.locator(".ctl")).to_have_text("⟨U+202E⟩")
                assert "\u202e" not in shown
            elif "pay" in shown:
                seen.add("zw")
                expect(text.locator(".ctl")).to_have_text("⟨U+200B⟩")
            item = card.get_attribute("data-item")
            page.locator("#buttons button").first.tap()
            expect(card.or_(page.locator("#nothing"))).not_to_have_attribute("data-item", item)
        assert seen == {"long", "rtl", "zw"}
        phone.close()

        desktop = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
        page = log_in(desktop.new_page(), server.url, token)
        page.keyboard.press("z")  # undo: the last item (whichever it was) comes back
        expect(page.locator("#item-text")).to_be_visible()
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(246, 247, 249)"
        expect(page.locator("#keys")).to_be_visible()
        desktop.close()
