"""Screenshots of the annotator's page: desktop (1280 px) and phone (375 px), light and dark.

Builds the demo project (real SMS messages, a first model) in a temporary
folder with guidelines, label descriptions and the model's suggestions
switched on, starts ``activelabel serve``, answers a few items in a real
Chromium so the history has rows, and saves
``docs/screenshots/label-{desktop,phone}-{light,dark}.png`` (the desktop
ones with the history panel open).

Usage::

    .venv/bin/python docs/label_screenshots.py
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import tomli_w

from activelabel.demo import build_demo

OUT = Path(__file__).parent / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
GUIDELINES = """Label each SMS message as **spam** or **ham**.

- Spam: sent to many people to sell, win or trick: prizes, premium numbers, "text STOP".
- Ham: anything a person wrote to someone they know, even if it mentions money.

When a message is cut off or not in English, press **U** (unsure) and leave a comment with **C**.
"""
DESCRIPTIONS = {"spam": "Unsolicited bulk messages: *prizes*, ringtones, premium-rate numbers, phishing links.",
                "ham": "Everything written by a person to someone they know."}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def configure(folder: Path) -> None:
    path = folder / "activelabel.toml"
    config = tomllib.loads(path.read_text())
    config.update(guidelines=GUIDELINES, label_descriptions=DESCRIPTIONS, show_suggestions=True, test_share=0.0)
    path.write_text(tomli_w.dumps(config))


def wait_for(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start") from None
            time.sleep(0.2)


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sms-spam"
        token = build_demo(folder)["annotator"]
        configure(folder)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "activelabel.cli", "serve", str(folder), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(url, server)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
                shots = [("desktop", {"width": 1280, "height": 900}, False),
                         ("phone", {"width": 375, "height": 740}, True)]
                for name, viewport, phone in shots:
                    for scheme in ("light", "dark"):
                        context = browser.new_context(viewport=viewport, device_scale_factor=1, color_scheme=scheme,
                                                      is_mobile=phone, has_touch=phone)
                        page = context.new_page()
                        page.goto(url + "/login")
                        page.fill("#token", token)
                        page.click("button[type=submit]")
                        page.wait_for_url(url + "/label")
                        if not phone:
                            for key in ("2", "2", "1"):  # a few answers, so the history has rows
                                item = page.locator("article.item").get_attribute("data-item")
                                page.keyboard.press(key)
                                page.wait_for_function(
                                    "id => document.querySelector('article.item')?.dataset.item !== id", arg=item)
                            page.keyboard.press("h")
                            page.locator("#history .history-row").first.wait_for()
                        page.locator("#suggestion").wait_for()
                        wide = page.evaluate("document.documentElement.scrollWidth")
                        path = OUT / f"label-{name}-{scheme}.png"
                        page.screenshot(path=str(path), full_page=not phone)
                        print(f"{path}: page {wide} px wide in a {viewport['width']} px window")
                        context.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
