"""The web page, driven by headless Chromium (Debian's chromium + Playwright), with the real default model."""

import shutil

import pytest

from moda.app.server import Server
from moda.pipeline.generate import Pipeline
from moda.samples import sample_path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server():
    server = Server(Pipeline.default(), port=0).start()
    yield server
    server.close()


def test_upload_sample_files_and_get_a_video_back(server, tmp_path):
    if CHROMIUM is None:
        pytest.fail("chromium not found: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(server.url)
        page.set_input_files("#image", str(sample_path("portrait.jpg")))
        page.set_input_files("#audio", str(sample_path("speech.wav")))
        page.select_option("#emotion", "happy")
        page.click("#generate")
        page.wait_for_selector("#result:not([hidden])", timeout=120_000)
        source = page.get_attribute("#result", "src")
        assert page.inner_text("#status") == "Done."
        response = page.request.get(server.url + source)
        assert response.ok and response.headers["content-type"] == "video/mp4"
        (tmp_path / "from_browser.mp4").write_bytes(response.body())
        duration = page.evaluate("""() => new Promise((resolve) => {
            const v = document.getElementById('result');
            if (v.readyState >= 1) resolve(v.duration); else v.onloadedmetadata = () => resolve(v.duration);
        })""")
        browser.close()
    assert 5.0 < duration < 8.0  # the sample speech is 6.7 s
    import av

    with av.open(str(tmp_path / "from_browser.mp4")) as container:
        assert container.streams.video[0].frames > 100 and container.streams.audio
