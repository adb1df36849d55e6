"""`moda serve`: a small web page and HTTP API in front of `Pipeline`, with an upload limit and a job queue.

    POST /api/jobs             multipart: image, audio, [emotion], [seed] -> 202 {"id", "status"}
    GET  /api/jobs/<id>        {"status": queued | running | done | failed, "position", "error"}
    GET  /api/jobs/<id>/video  the mp4 once done
Binds to 127.0.0.1 unless told otherwise; one worker renders jobs in arrival order.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import queue
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

from ..errors import MoDAError
from ..pipeline.generate import GenerateOptions, Pipeline

MAX_QUEUED = 16
MAX_DURATION = 120.0  # seconds of speech per job: a server's jobs are short


@dataclass
class Job:
    id: str
    folder: Path
    options: GenerateOptions
    status: str = "queued"
    error: str = ""
    video: Path | None = None


@dataclass
class JobQueue:
    pipeline: Pipeline
    root: Path
    jobs: dict[str, Job] = field(default_factory=dict)
    pending: queue.Queue[Job] = field(default_factory=queue.Queue)
    order: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        threading.Thread(target=self._work, daemon=True, name="moda-worker").start()

    def submit(self, files: dict[str, tuple[str, bytes]], options: GenerateOptions) -> Job:
        with self.lock:
            if sum(j.status == "queued" for j in self.jobs.values()) >= MAX_QUEUED:
                raise OverflowError
            job = Job(uuid.uuid4().hex, self.root / uuid.uuid4().hex, options)
            job.folder.mkdir(parents=True)
            for field_name, (filename, data) in files.items():
                (job.folder / f"{field_name}{Path(filename).suffix.lower()[:8]}").write_bytes(data)
            self.jobs[job.id] = job
            self.order.append(job.id)
        self.pending.put(job)
        return job

    def position(self, job: Job) -> int:
        with self.lock:
            earlier = self.order[: self.order.index(job.id)]
            return sum(self.jobs[i].status == "queued" for i in earlier)

    def _work(self) -> None:
        while True:
            job = self.pending.get()
            job.status = "running"
            try:
                image = next(job.folder.glob("image*"))
                audio = next(job.folder.glob("audio*"))
                job.video = self.pipeline.generate(image, audio, job.folder / "result.mp4", job.options, progress=False,
                                                   max_duration=MAX_DURATION)
                job.status = "done"
            except MoDAError as exc:
                job.status, job.error = "failed", str(exc)
            except Exception as exc:  # a job must never take the worker down
                job.status, job.error = "failed", f"internal error: {type(exc).__name__}: {exc}"


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, tuple[str, bytes]], dict[str, str]]:
    """(files: name -> (filename, bytes), fields: name -> text) of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ValueError("expected multipart/form-data")
    files: dict[str, tuple[str, bytes]] = {}
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        if part.get_filename() is not None:
            files[name] = (str(part.get_filename()), payload)
        else:
            fields[name] = payload.decode("utf-8", "replace")
    return files, fields


def make_handler(jobs: JobQueue, max_upload_bytes: int) -> type[BaseHTTPRequestHandler]:
    page = (resources.files("moda") / "app" / "index.html").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args) -> None:  # quiet: the CLI prints its own line
            pass

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: HTTPStatus, value: dict) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def do_GET(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts == [""]:
                return self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            if len(parts) >= 3 and parts[:2] == ["api", "jobs"] and parts[2] in jobs.jobs:
                job = jobs.jobs[parts[2]]
                if len(parts) == 3:
                    return self._json(HTTPStatus.OK, {"id": job.id, "status": job.status, "error": job.error,
                                                      "position": jobs.position(job)})
                if parts[3:] == ["video"] and job.status == "done" and job.video is not None:
                    return self._send(HTTPStatus.OK, job.video.read_bytes(), "video/mp4")
            self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/api/jobs":
                return self._json(HTTPStatus.NOT_FOUND, {"error": "not found"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > max_upload_bytes:
                # drain (without keeping) what the client sends, so it can read the answer
                remaining = min(length, 20 * max_upload_bytes)
                while remaining > 0:
                    remaining -= len(self.rfile.read(min(remaining, 1 << 16)) or b"x" * remaining)
                self.close_connection = True
                return self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                  {"error": f"upload is {length / 1e6:.1f} MB; the limit is {max_upload_bytes / 1e6:.0f} MB"})
            try:
                files, fields = parse_multipart(self.headers.get("Content-Type", ""), self.rfile.read(length))
            except ValueError as exc:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            missing = [name for name in ("image", "audio") if name not in files or not files[name][1]]
            if missing:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": f"missing upload: {', '.join(missing)}"})
            try:
                options = GenerateOptions(emotion=fields.get("emotion") or None, seed=int(fields.get("seed") or 0))
            except ValueError:
                return self._json(HTTPStatus.BAD_REQUEST, {"error": "seed must be a whole number"})
            try:
                job = jobs.submit({k: files[k] for k in ("image", "audio")}, options)
            except OverflowError:
                return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "the queue is full; try again later"})
            self._json(HTTPStatus.ACCEPTED, {"id": job.id, "status": job.status})

    return Handler


class Server:
    """The HTTP server and its job queue; `serve_forever` blocks, `start` runs it in a thread (tests)."""

    def __init__(self, pipeline: Pipeline, host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 25):
        self.root = Path(tempfile.mkdtemp(prefix="moda-serve-"))
        self.jobs = JobQueue(pipeline, self.root)
        self.httpd = ThreadingHTTPServer((host, port), make_handler(self.jobs, int(max_upload_mb * 1e6)))
        self.jobs.start()
        self.serving = False

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Server:
        self.serving = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="moda-http").start()
        return self

    def serve_forever(self) -> None:
        self.serving = True
        self.httpd.serve_forever()

    def close(self) -> None:
        if self.serving:  # shutdown() waits for a serve_forever loop, so only when one runs
            self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.root, ignore_errors=True)
