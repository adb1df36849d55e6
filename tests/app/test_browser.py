"""The web page, driven by headless Chromium (Debian's chromium + Playwright), with the real default model."""

import shutil

import pytest

from moda.app.server import Server, ServerSettings
from moda.pipeline.generate import Pipeline
from moda.samples import sample_path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server():
    server = Server(Pipeline.default(), ServerSettings(port=0)).start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium not found: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def test_an_example_portrait_and_uploaded_speech_become_a_video(server, browser, tmp_path):
    page = browser.new_page()
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.url)
    page.click("button[data-example='/api/examples/portrait.jpg']")
    page.wait_for_selector("#image-note:has-text('Face found')")
    assert page.is_visible("#face-box")  # the detected face is boxed on the preview
    page.set_input_files("#audio", str(sample_path("speech.wav")))
    page.select_option("#emotion", "happy")
    page.fill("#seed", "3")
    page.click("#generate:not([disabled])")
    page.wait_for_selector("#live:not([hidden])", timeout=120_000)  # frames shown while they are rendered
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert page.inner_text("#status") == "Done."
    source = page.get_attribute("#result", "src")
    response = page.request.get(server.url + source)
    assert response.ok and response.headers["content-type"] == "video/mp4"
    (tmp_path / "from_browser.mp4").write_bytes(response.body())
    duration = page.evaluate("""() => new Promise((resolve) => {
        const v = document.getElementById('result');
        if (v.readyState >= 1) resolve(v.duration); else v.onloadedmetadata = () => resolve(v.duration);
    })""")
    assert 5.0 < duration < 8.0  # the sample speech is 6.7 s
    assert "portrait.jpg + speech.wav: done" in page.inner_text("#jobs")  # this session's list
    assert page.get_attribute("#download", "href") == source
    assert all(url.startswith((server.url, "blob:", "data:")) for url in requested), requested  # no CDN
    import av

    with av.open(str(tmp_path / "from_browser.mp4")) as container:
        assert container.streams.video[0].frames > 100 and container.streams.audio


def test_a_faceless_picture_is_refused_before_submitting_and_the_page_fits_a_phone(server, browser, tmp_path):
    from PIL import Image

    Image.new("RGB", (300, 300), (120, 130, 140)).save(tmp_path / "wall.png")
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(server.url)
    page.set_input_files("#image", str(tmp_path / "wall.png"))
    page.wait_for_selector("#image-note.error")
    assert "no face found" in page.inner_text("#image-note") and page.is_disabled("#generate")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # one column, no sideways scrolling
    page.screenshot(path=str(tmp_path / "phone.png"), full_page=True)
