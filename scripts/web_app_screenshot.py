"""The README's picture of the web app with a result: `moda serve` with the default model, driven by headless
Chromium as a first-time visitor would use it (an example portrait, an example recording, Generate).

    python scripts/web_app_screenshot.py        # writes docs/web_app.png (needs Debian's chromium)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

from moda.app.server import Server, ServerSettings
from moda.pipeline.generate import Pipeline

DOCS = Path(__file__).resolve().parents[1] / "docs"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def main() -> None:
    server = Server(Pipeline.default(), ServerSettings(port=0)).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(server.url)
            page.click("button[data-example='/api/examples/photo_closed_mouth.jpg']")
            page.wait_for_selector("#image-note:has-text('Face found')")
            page.click("button[data-example='/api/examples/read_speech.wav']")
            page.select_option("#emotion", "happy")
            page.click("#generate:not([disabled])")
            page.wait_for_selector("#result:not([hidden])", timeout=300_000)
            page.evaluate("() => new Promise((done) => { const v = document.getElementById('result'); "
                          "v.onseeked = () => done(); v.currentTime = 1.3; })")
            page.wait_for_timeout(1500)  # the seek's loading indicator fades
            page.screenshot(path=str(DOCS / "web_app.png"), full_page=True)
            browser.close()
    finally:
        server.close()
    print(f"wrote {DOCS / 'web_app.png'}")


if __name__ == "__main__":
    main()
