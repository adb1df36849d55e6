"""`moda serve` over real HTTP on a loopback port (uvicorn), with a stand-in for the models; the real model is
in test_browser and in the SIGINT test."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
import soundfile

from moda.app.server import Server, ServerSettings
from moda.errors import MoDAError
from moda.media.video import Mp4Writer
from moda.pipeline.backend import Capabilities
from moda.samples import sample_path


class Backend:
    capabilities = Capabilities(streams=True, emotions=False, transcripts=False)
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


class Client(httpx.Client):
    """Real HTTP to a server on 127.0.0.1, sending its token on requests that change state."""

    def __init__(self, server: Server):
        super().__init__(base_url=server.url, timeout=30)
        self.server, self.token, self.root = server, server.token, server.jobs.root

    def post(self, url, headers=None, **kwargs):
        return super().post(url, headers={"X-Moda-Token": self.token, **(headers or {})}, **kwargs)

    def delete(self, url, **kwargs):
        return super().delete(url, headers={"X-Moda-Token": self.token}, **kwargs)


def make_client(pipeline=None, **settings):
    server = Server(pipeline or StandInPipeline(), ServerSettings(port=0, **settings)).start()
    return Client(server)


@pytest.fixture
def client():
    client = make_client()
    yield client
    client.server.close()


def files(speech, image=None):
    return {"image": ("portrait.jpg", (image or sample_path("portrait.jpg")).read_bytes(), "image/jpeg"),
            "audio": ("speech.wav", speech.read_bytes(), "audio/wav")}


def submit(client, speech, data=None, headers=None):
    return client.post("/api/jobs", files=files(speech), data=data or {}, headers=headers)


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
    assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert client.get(f"/api/jobs/{job['id']}").status_code == 404


def test_foreign_hosts_origins_and_tokenless_requests_are_refused(client, speech):
    port = client.server.settings.port
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 421  # DNS rebinding
    assert client.get("/api/config", headers={"Host": f"localhost:{port + 1}"}).status_code == 421
    assert client.get("/api/config", headers={"Host": f"localhost:{port}"}).status_code == 200
    cross = submit(client, speech, headers={"Origin": "http://attacker.example"})
    assert cross.status_code == 403  # CSRF
    assert httpx.post(client.server.url + "/api/jobs", files=files(speech)).status_code == 403  # no token
    assert client.post("/api/jobs", files=files(speech), headers={"X-Moda-Token": "guess"}).status_code == 403
    same = submit(client, speech, headers={"Origin": f"http://127.0.0.1:{port}"})
    assert same.status_code == 202
    page = client.get("/")
    assert client.token in page.text and "/static/app.js" in page.text
    for response in (page, client.get("/api/config"), client.get("/static/app.js")):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_uploads_over_the_limit_or_malformed_are_stopped(speech):
    client = make_client(max_upload_bytes=100_000, read_timeout=1.0)
    try:
        headers = {"Content-Type": "multipart/form-data; boundary=b"}
        big = {"image": ("p.jpg", b"\xff" * 200_000, "image/jpeg"), "audio": ("s.wav", b"x", "audio/wav")}
        assert client.post("/api/jobs", files=big).status_code == 413
        for length in ("-1", "abc"):
            with socket.create_connection(("127.0.0.1", client.server.settings.port), timeout=10) as raw:
                raw.sendall(f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1:{client.server.settings.port}\r\n"
                            f"X-Moda-Token: {client.token}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                            f"Content-Length: {length}\r\n\r\n".encode() + b"x" * 1000)
                assert raw.recv(100).split(b" ")[1] == b"400", length  # an HTTP answer, not a dropped connection

        def chunks():  # no Content-Length: the limit is enforced while reading
            yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n\r\n"
            for _ in range(50):
                yield b"\x00" * 10_000

        assert client.post("/api/jobs", content=chunks(), headers=headers).status_code == 413

        def stalls():
            yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n\r\n"
            time.sleep(3)
            yield b"--b--\r\n"

        assert client.post("/api/jobs", content=stalls(), headers=headers).status_code == 408  # slowloris
        nested = b"".join(b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" for _ in range(3000)) + b"--b--\r\n"
        assert client.post("/api/jobs", content=nested, headers=headers).status_code in (400, 413, 422)  # an answer
        assert list(client.root.iterdir()) == []  # nothing kept from refused uploads
    finally:
        client.server.close()


def test_memory_stays_bounded_while_receiving_a_body_at_the_limit(speech):
    import tracemalloc

    client = make_client(max_upload_bytes=20_000_000)
    try:
        body = {"image": ("p.jpg", b"\xff" * 19_000_000, "image/jpeg"), "audio": ("s.wav", speech.read_bytes(), "audio/wav")}
        tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        response = client.post("/api/jobs", files=body)
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
        assert response.status_code == 422  # received in full, then refused: not an image
        # the client's own copy of the body is 19 MB; the server spools the upload to disk as it arrives
        assert peak < 19_000_000 + 8_000_000, peak / 1e6
    finally:
        client.server.close()


@pytest.mark.parametrize("data,field", [({"emotion": "bored"}, "emotion"), ({"seed": "-1"}, "seed"),
                                        ({"seed": "x"}, "seed"), ({"cfg_audio": "nan"}, "cfg_audio"),
                                        ({"cfg_emotion": "11"}, "cfg_emotion"), ({"text": "hello xyzzy"}, "text"),
                                        ({"text": "!!"}, "text")])
def test_options_are_validated_at_submit(client, speech, data, field):
    response = submit(client, speech, data)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", field], response.text


def test_inputs_are_validated_at_submit_without_revealing_server_paths(speech, tmp_path):
    client = make_client(max_duration=0.5)
    try:
        bad_image = {**files(speech), "image": ("portrait.png", b"not an image", "image/png")}
        response = client.post("/api/jobs", files=bad_image)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "image"]
        long = client.post("/api/jobs", files=files(speech))
        detail = long.json()["detail"][0]
        assert long.status_code == 422 and detail["loc"] == ["body", "audio"] and "the limit is 0.5 s" in detail["msg"]
        assert str(client.root) not in response.text + long.text
        exe = {**files(speech), "image": ("portrait.exe", b"MZ", "application/octet-stream")}
        assert client.post("/api/jobs", files=exe).status_code == 422
        samples = np.zeros(4000, np.float32)
        samples[100] = np.nan
        soundfile.write(tmp_path / "nan.wav", samples, 16000, subtype="FLOAT")
        nan = {**files(speech), "audio": ("nan.wav", (tmp_path / "nan.wav").read_bytes(), "audio/wav")}
        response = client.post("/api/jobs", files=nan)  # it once wedged the worker for good
        assert response.status_code == 422 and "NaN or infinite" in response.json()["detail"][0]["msg"]
    finally:
        client.server.close()


def test_a_bad_job_fails_alone_and_a_slow_one_hits_the_time_limit(speech):
    client = make_client(time_limit=1.0)
    try:
        failing = submit(client, speech, {"seed": "13"}).json()
        endless = submit(client, speech, {"seed": "99"}).json()
        fine = submit(client, speech, {"seed": "1"}).json()
        failed = wait(client, failing["id"])
        assert failed["status"] == "failed" and "no face found in portrait.jpg" in failed["error"]
        assert str(client.root) not in failed["error"]  # the upload's own name, not the server's path
        timed_out = wait(client, endless["id"])
        assert timed_out["status"] == "failed" and "longer than the server's limit of 1 s" in timed_out["error"]
        assert wait(client, fine["id"])["status"] == "done"  # the queue moved on
    finally:
        client.server.close()


def test_cancel_a_running_job_a_full_queue_and_expiry(speech):
    client = make_client(max_queued=1, ttl=0.3)
    try:
        running = submit(client, speech, {"seed": "99"}).json()
        wait(client, running["id"], until=("running",))
        queued = submit(client, speech).json()
        assert client.get(f"/api/jobs/{queued['id']}").json()["position"] == 0
        assert submit(client, speech).status_code == 429  # one queued job is the limit
        assert client.post(f"/api/jobs/{running['id']}/cancel").status_code == 200
        assert wait(client, running["id"])["status"] == "cancelled"
        assert wait(client, queued["id"])["status"] == "done"
        time.sleep(0.5)
        assert client.get(f"/api/jobs/{queued['id']}").status_code == 404  # expired, files removed
        assert list(client.root.iterdir()) == []
    finally:
        client.server.close()


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

    face = client.post("/api/face", files={"image": ("p.jpg", sample_path("portrait.jpg").read_bytes())})
    x0, y0, x1, y1 = face.json()["box"]
    assert face.status_code == 200 and 0 < x0 < x1 < 1 and 0 < y0 < y1 < 1
    Image.new("RGB", (200, 200), (120, 120, 120)).save(tmp_path / "wall.png")
    none = client.post("/api/face", files={"image": ("wall.png", (tmp_path / "wall.png").read_bytes())})
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


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_moda_serve_stops_cleanly_mid_job_and_deletes_every_upload(signum, code, speech):
    """The real default model, stopped while it renders a job: graceful, nothing left in /tmp."""
    import re

    before = set(Path("/tmp").glob("moda-serve-*"))
    process = subprocess.Popen([sys.executable, "-m", "moda", "serve", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    url, token = re.search(r"(http://\S+:\d+)", line).group(1), re.search(r"token for scripts: (\S+)", line).group(1)
    job = httpx.post(url + "/api/jobs", files=files(speech), headers={"X-Moda-Token": token}, timeout=30).json()
    assert set(Path("/tmp").glob("moda-serve-*")) - before  # its upload folder
    deadline = time.time() + 60
    while httpx.get(f"{url}/api/jobs/{job['id']}").json()["status"] != "running" and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code and "Traceback" not in stderr and "terminate called" not in stderr, stderr
    assert set(Path("/tmp").glob("moda-serve-*")) - before == set()  # removed, with every upload
    bad = subprocess.run([sys.executable, "-m", "moda", "serve", "--max-upload-mb", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("moda: error: --max-upload-mb")


def test_words_spoken_reach_the_generator(speech):
    pipeline = StandInPipeline()
    client = make_client(pipeline)
    try:
        assert client.get("/api/config").json()["transcripts"] is False  # the page hides its words field then
        job = submit(client, speech, {"text": "Go forward ten meters."}).json()
        assert wait(client, job["id"])["status"] == "done"
        assert pipeline.calls[-1].transcript == "Go forward ten meters."
    finally:
        client.server.close()
