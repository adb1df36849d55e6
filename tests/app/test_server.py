"""The HTTP layer of `moda serve` (FastAPI), with a stand-in for the models; the real model is in test_browser."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient

from moda.app.jobs import JobQueue
from moda.app.server import Server, ServerSettings, create_app
from moda.errors import MoDAError
from moda.media.video import Mp4Writer
from moda.pipeline.backend import Capabilities
from moda.samples import sample_path

PORT = 7861
TOKEN = "test-token"


class Backend:
    capabilities = Capabilities(streams=True, emotions=False)
    default_guidance = 1.5


class StandInPipeline:
    """Writes a short video, reporting progress per frame; seed 13 fails, seed 99 never ends by itself."""

    backend = Backend()

    def __init__(self, frames=6, delay=0.02):
        self.frames, self.delay, self.calls = frames, delay, []

    def generate(self, image, audio, out, options, progress=True, max_duration=None, on_progress=None):
        self.calls.append(options)
        if options.seed == 13:
            raise MoDAError(f"no face found in {image}; give a portrait with one clearly visible, frontal face")
        frames = 10**9 if options.seed == 99 else self.frames
        with Mp4Writer(out, 25, 64, 64) as writer:
            for index in range(frames):
                time.sleep(self.delay)
                frame = np.full((64, 64, 3), index * 40 % 255, np.uint8)
                writer.write(frame)
                on_progress("render", index + 1, frames, frame)
        return out


@pytest.fixture
def speech(tmp_path):
    from moda.media.audio import load_audio

    path = tmp_path / "speech.wav"
    soundfile.write(path, load_audio(sample_path("speech.wav"))[:16000], 16000)
    return path


def make_client(tmp_path, pipeline=None, **settings):
    settings = ServerSettings(port=PORT, **settings)
    jobs = JobQueue(pipeline or StandInPipeline(), tmp_path / "jobs", settings.max_queued, settings.time_limit,
                    settings.ttl, settings.max_duration).start()
    client = TestClient(create_app(pipeline or jobs.pipeline, jobs, settings, TOKEN), base_url=f"http://127.0.0.1:{PORT}")
    return client, jobs


@pytest.fixture
def client(tmp_path):
    client, jobs = make_client(tmp_path)
    yield client
    jobs.close()


def files(speech, image=None):
    return {"image": ("portrait.jpg", (image or sample_path("portrait.jpg")).read_bytes(), "image/jpeg"),
            "audio": ("speech.wav", speech.read_bytes(), "audio/wav")}


def submit(client, speech, data=None, headers=None):
    return client.post("/api/jobs", files=files(speech), data=data or {}, headers=headers or {"X-Moda-Token": TOKEN})


def wait(client, job_id, until=("done", "failed", "cancelled"), timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["status"] in until:
            return state
        time.sleep(0.02)
    raise AssertionError(f"job still {state}")


def test_a_job_runs_and_its_video_is_served_with_range_support(client, speech):
    response = submit(client, speech, {"emotion": "happy", "seed": "4", "cfg_audio": "2.5"})
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] in ("queued", "running")
    state = wait(client, job["id"])
    assert state["status"] == "done" and state["stage"] == "done" and state["video"] == f"/api/jobs/{job['id']}/video"
    whole = client.get(state["video"])
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    part = client.get(state["video"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == whole.content[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(whole.content)}"
    assert client.get(f"/api/jobs/{job['id']}/preview").content[:2] == b"\xff\xd8"  # the last frame, as JPEG
    assert client.delete(f"/api/jobs/{job['id']}", headers={"X-Moda-Token": TOKEN}).status_code == 204
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404


def test_foreign_hosts_origins_and_tokenless_requests_are_refused(client, speech):
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 421  # DNS rebinding
    assert client.get("/api/config", headers={"Host": f"localhost:{PORT + 1}"}).status_code == 421
    assert client.get("/api/config", headers={"Host": f"localhost:{PORT}"}).status_code == 200
    cross = submit(client, speech, headers={"X-Moda-Token": TOKEN, "Origin": "http://attacker.example"})
    assert cross.status_code == 403  # CSRF
    assert client.post("/api/jobs", files=files(speech)).status_code == 403  # no token
    same = submit(client, speech, headers={"X-Moda-Token": TOKEN, "Origin": f"http://127.0.0.1:{PORT}"})
    assert same.status_code == 202
    page = client.get("/")
    assert TOKEN in page.text and "/static/app.js" in page.text
    for response in (page, client.get("/api/config"), client.get("/static/app.js")):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_uploads_over_the_limit_or_malformed_are_stopped(tmp_path, speech):
    client, jobs = make_client(tmp_path, max_upload_bytes=100_000)
    try:
        headers = {"X-Moda-Token": TOKEN}
        big = {"image": ("p.jpg", b"\xff" * 200_000, "image/jpeg"), "audio": ("s.wav", b"x", "audio/wav")}
        assert client.post("/api/jobs", files=big, headers=headers).status_code == 413
        for length in ("-1", "abc"):
            response = client.post("/api/jobs", content=b"x" * 10, headers={**headers, "Content-Length": length,
                                                                             "Content-Type": "multipart/form-data; boundary=b"})
            assert response.status_code == 400, length

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n\r\n"
            for _ in range(50):
                yield b"\x00" * 10_000

        streamed = client.post("/api/jobs", content=chunks(),
                               headers={**headers, "Content-Type": "multipart/form-data; boundary=b"})
        assert streamed.status_code == 413
        assert list((tmp_path / "jobs").iterdir()) == []  # nothing kept from refused uploads
    finally:
        jobs.close()


@pytest.mark.parametrize("data,field", [({"emotion": "bored"}, "emotion"), ({"seed": "-1"}, "seed"),
                                        ({"seed": "x"}, "seed"), ({"cfg_audio": "nan"}, "cfg_audio"),
                                        ({"cfg_emotion": "11"}, "cfg_emotion")])
def test_options_are_validated_at_submit(client, speech, data, field):
    response = submit(client, speech, data)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", field], response.text


def test_inputs_are_validated_at_submit_without_revealing_server_paths(tmp_path, speech):
    client, jobs = make_client(tmp_path, max_duration=0.5)
    try:
        headers = {"X-Moda-Token": TOKEN}
        bad_image = {**files(speech), "image": ("portrait.png", b"not an image", "image/png")}
        response = client.post("/api/jobs", files=bad_image, headers=headers)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "image"]
        long = client.post("/api/jobs", files=files(speech), headers=headers)
        detail = long.json()["detail"][0]
        assert long.status_code == 422 and detail["loc"] == ["body", "audio"] and "the limit is 0.5 s" in detail["msg"]
        assert str(tmp_path) not in response.text + long.text
        exe = {**files(speech), "image": ("portrait.exe", b"MZ", "application/octet-stream")}
        assert client.post("/api/jobs", files=exe, headers=headers).status_code == 422
    finally:
        jobs.close()


def test_a_bad_job_fails_alone_and_a_slow_one_hits_the_time_limit(tmp_path, speech):
    client, jobs = make_client(tmp_path, time_limit=1.0)
    try:
        failing = submit(client, speech, {"seed": "13"}).json()
        endless = submit(client, speech, {"seed": "99"}).json()
        fine = submit(client, speech, {"seed": "1"}).json()
        failed = wait(client, failing["id"])
        assert failed["status"] == "failed" and "no face found in portrait.jpg" in failed["error"]
        assert str(tmp_path) not in failed["error"]  # the upload's own name, not the server's path
        timed_out = wait(client, endless["id"])
        assert timed_out["status"] == "failed" and "longer than the server's limit of 1 s" in timed_out["error"]
        assert wait(client, fine["id"])["status"] == "done"  # the queue moved on
    finally:
        jobs.close()


def test_cancel_a_running_job_a_full_queue_and_expiry(tmp_path, speech):
    client, jobs = make_client(tmp_path, max_queued=1, ttl=0.3)
    try:
        running = submit(client, speech, {"seed": "99"}).json()
        wait(client, running["id"], until=("running",))
        queued = submit(client, speech).json()
        assert client.get(f"/api/jobs/{queued['id']}").json()["position"] == 0
        assert submit(client, speech).status_code == 429  # one queued job is the limit
        assert client.post(f"/api/jobs/{running['id']}/cancel", headers={"X-Moda-Token": TOKEN}).status_code == 200
        assert wait(client, running["id"])["status"] == "cancelled"
        assert wait(client, queued["id"])["status"] == "done"
        time.sleep(0.5)
        assert client.get(f"/api/jobs/{queued['id']}").status_code == 404  # expired, files removed
        assert list((tmp_path / "jobs").iterdir()) == []
    finally:
        jobs.close()


def test_openapi_docs_config_and_examples_are_served(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/video", "/api/jobs/{job_id}/cancel",
            "/api/face"} <= set(schema["paths"])
    assert client.get("/docs").status_code == 200
    config = client.get("/api/config").json()
    assert config["default_cfg_audio"] == 1.5 and "happy" in config["emotions"] and config["max_duration_s"] == 120
    kinds = {item["kind"] for item in config["examples"]}
    assert kinds == {"image", "audio"} and len(config["examples"]) >= 4
    for item in config["examples"]:
        assert client.get(item["url"]).status_code == 200, item
    assert client.get("/api/examples/..%2Fserver.py").status_code == 404


def test_the_face_preview_finds_the_box_or_says_no_face(client, tmp_path):
    from PIL import Image

    headers = {"X-Moda-Token": TOKEN}
    face = client.post("/api/face", files={"image": ("p.jpg", sample_path("portrait.jpg").read_bytes())}, headers=headers)
    x0, y0, x1, y1 = face.json()["box"]
    assert face.status_code == 200 and 0 < x0 < x1 < 1 and 0 < y0 < y1 < 1
    Image.new("RGB", (200, 200), (120, 120, 120)).save(tmp_path / "wall.png")
    none = client.post("/api/face", files={"image": ("wall.png", (tmp_path / "wall.png").read_bytes())}, headers=headers)
    assert none.status_code == 422 and "no face found" in none.json()["detail"][0]["msg"]


def test_the_server_binds_localhost_and_refuses_a_busy_port_or_bad_limits():
    assert ServerSettings().host == "127.0.0.1"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(MoDAError, match="cannot listen on 127.0.0.1"):
            Server(StandInPipeline(), ServerSettings(port=taken.getsockname()[1]))
    for bad in (ServerSettings(max_upload_bytes=0), ServerSettings(max_duration=-1), ServerSettings(port=70000)):
        with pytest.raises(MoDAError):
            bad.check()


def test_moda_serve_answers_and_cleans_up_on_sigterm(tmp_path):
    import re
    import urllib.request

    before = set(Path("/tmp").glob("moda-serve-*"))
    process = subprocess.Popen([sys.executable, "-m", "moda", "serve", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    url = re.search(r"http://\S+:\d+", line).group(0)
    with urllib.request.urlopen(url + "/api/config", timeout=10) as response:
        assert response.status == 200
    assert set(Path("/tmp").glob("moda-serve-*")) - before  # its upload folder
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 143 and "Traceback" not in stderr, stderr  # uvicorn's graceful stop, then the signal
    assert set(Path("/tmp").glob("moda-serve-*")) - before == set()  # removed, with every upload
    busy = subprocess.run([sys.executable, "-m", "moda", "serve", "--max-upload-mb", "-1"], capture_output=True, text=True)
    assert busy.returncode == 2 and busy.stderr.startswith("moda: error: --max-upload-mb")
