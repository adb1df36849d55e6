import json
import time
import urllib.error
import urllib.request
import uuid

import numpy as np
import pytest

from moda.app.server import Server, parse_multipart
from moda.errors import MoDAError
from moda.media.video import Mp4Writer


class RecordingPipeline:
    """Stands in for the models in the HTTP-layer tests: writes a 3-frame video, or fails on request."""

    def __init__(self):
        self.calls = []

    def generate(self, image, audio, out, options, progress=True):
        self.calls.append((image.read_bytes(), audio.read_bytes(), options))
        if image.read_bytes() == b"no face":
            raise MoDAError("no face found in image")
        time.sleep(0.2)
        with Mp4Writer(out, 25, 64, 64) as writer:
            for value in (0, 100, 200):
                writer.write(np.full((64, 64, 3), value, np.uint8))
        return out


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    chunks = []
    for name, value in fields.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        chunks.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                      f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def request(url, body=None, content_type=None):
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if content_type else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def server():
    pipeline = RecordingPipeline()
    server = Server(pipeline, port=0, max_upload_mb=1).start()
    yield server, pipeline
    server.close()


def wait_for(url, job_id):
    for _ in range(100):
        state = json.loads(request(f"{url}/api/jobs/{job_id}")[1])
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_binds_to_localhost_by_default():
    server = Server(RecordingPipeline(), port=0)
    try:
        assert server.url.startswith("http://127.0.0.1:")
    finally:
        server.close()


def test_job_lifecycle_and_options(server):
    server, pipeline = server
    body, content_type = multipart({"emotion": "happy", "seed": "7"}, {"image": ("p.png", b"img"), "audio": ("a.wav", b"snd")})
    status, reply = request(f"{server.url}/api/jobs", body, content_type)
    assert status == 202
    job = json.loads(reply)
    state = wait_for(server.url, job["id"])
    assert state["status"] == "done"
    status, video = request(f"{server.url}/api/jobs/{job['id']}/video")
    assert status == 200 and video[4:8] == b"ftyp"
    image, audio, options = pipeline.calls[0]
    assert (image, audio, options.emotion, options.seed) == (b"img", b"snd", "happy", 7)


def test_queue_runs_jobs_in_order(server):
    server, pipeline = server
    ids = []
    for index in range(3):
        body, content_type = multipart({}, {"image": ("p.png", f"img{index}".encode()), "audio": ("a.wav", b"x")})
        ids.append(json.loads(request(f"{server.url}/api/jobs", body, content_type)[1])["id"])
    queued = json.loads(request(f"{server.url}/api/jobs/{ids[2]}")[1])
    assert queued["status"] in ("queued", "running") and queued["position"] <= 2
    for job_id in ids:
        assert wait_for(server.url, job_id)["status"] == "done"
    assert [call[0] for call in pipeline.calls] == [b"img0", b"img1", b"img2"]


def test_bad_requests(server):
    server, _ = server
    big, content_type = multipart({}, {"image": ("p.png", b"x" * 2_000_000), "audio": ("a.wav", b"y")})
    status, reply = request(f"{server.url}/api/jobs", big, content_type)
    assert status == 413 and "limit is 1 MB" in json.loads(reply)["error"]
    body, content_type = multipart({}, {"image": ("p.png", b"img")})
    status, reply = request(f"{server.url}/api/jobs", body, content_type)
    assert status == 400 and "audio" in json.loads(reply)["error"]
    body, content_type = multipart({}, {"image": ("p.png", b"no face"), "audio": ("a.wav", b"x")})
    job = json.loads(request(f"{server.url}/api/jobs", body, content_type)[1])
    assert wait_for(server.url, job["id"]) == {"id": job["id"], "status": "failed", "error": "no face found in image",
                                               "position": 0}
    assert request(f"{server.url}/api/jobs/nope")[0] == 404
    assert request(f"{server.url}/api/jobs/{job['id']}/video")[0] == 404


def test_multipart_parser_reads_files_and_fields():
    body, content_type = multipart({"seed": "3"}, {"image": ("a b.png", b"\x00\x01binary\r\n")})
    files, fields = parse_multipart(content_type, body)
    assert files == {"image": ("a b.png", b"\x00\x01binary\r\n")} and fields == {"seed": "3"}
