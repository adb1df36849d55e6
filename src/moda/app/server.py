"""`moda serve`: the web page and HTTP API in front of `Pipeline`, on FastAPI + uvicorn.

API (OpenAPI description at /openapi.json, docs at /docs):
  POST /api/jobs                 multipart: image, audio files; emotion, seed, cfg_audio, cfg_emotion fields -> 202
  GET  /api/jobs/{id}            status, stage, progress, queue position, error
  GET  /api/jobs/{id}/video      the result (mp4, HTTP Range supported)
  GET  /api/jobs/{id}/preview    the latest rendered frame (JPEG), while the job renders
  POST /api/jobs/{id}/cancel     stop a queued or running job;  DELETE /api/jobs/{id}: cancel and delete its files
  POST /api/face                 multipart: image -> the face box the page previews (or 422 "no face")
  GET  /api/config               emotions, default guidance, limits, examples

Defences: only Host values naming the bound address or localhost with the server's port are served (421
otherwise: DNS rebinding); requests that change state must carry the per-launch token the page holds
(`X-Moda-Token`) and, when a browser sends an Origin, come from this server's own origin (403 otherwise: CSRF);
CSP and other security headers on every response. Uploads are streamed to disk with the size limit enforced
while reading (413), a stalled upload times out (408); options are validated at submit (422 naming the field);
the queue has a length limit (429); jobs run one at a time with a time limit, and expire after a while.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import shutil
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.types import Message, Receive

from ..audio.phones import checked_transcript
from ..emotion import EMOTIONS, emotion_id
from ..errors import MoDAError
from ..pipeline.generate import MAX_GUIDANCE, MIN_AUDIO_SECONDS, GenerateOptions, Pipeline
from ..samples import sample_path
from .jobs import Job, JobQueue, QueueFull

UPLOAD_SUFFIXES = {"image": {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"},
                   "audio": {".wav", ".mp3", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".flac", ".webm", ".mp4", ".mov"}}
EXAMPLES_FOLDER = "examples"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
                               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), geolocation=(), microphone=(self)",
}


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_bytes: int = 25_000_000
    max_duration: float = 120.0  # seconds of speech per job
    time_limit: float = 600.0  # seconds a job may run
    ttl: float = 3600.0  # seconds finished jobs are kept
    max_queued: int = 16
    read_timeout: float = 30.0  # seconds an upload may stall

    def check(self) -> None:
        if not self.max_upload_bytes > 0:
            raise MoDAError("--max-upload-mb must be a positive number of megabytes")
        for name, value in (("--max-duration", self.max_duration), ("--time-limit", self.time_limit)):
            if not (value > 0 and math.isfinite(value)):
                raise MoDAError(f"{name} must be a positive number of seconds")
        if not 0 < self.port < 65536 and self.port != 0:
            raise MoDAError(f"--port {self.port} is not a TCP port (1-65535)")


class UploadTooLarge(Exception):
    pass


class UploadStalled(Exception):
    pass


def _limited(receive: Receive, limit: int, timeout: float) -> Receive:
    """`receive` that stops an upload once its body passes `limit` bytes or stalls for `timeout` seconds."""
    seen = 0

    async def limited_receive() -> Message:
        nonlocal seen
        try:
            message = await asyncio.wait_for(receive(), timeout)
        except TimeoutError as exc:
            raise UploadStalled from exc
        seen += len(message.get("body", b""))
        if seen > limit:
            raise UploadTooLarge
        return message

    return limited_receive


def _unprocessable(field_name: str, message: str) -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", field_name], "msg": message}])


def _options(fields: dict[str, str]) -> GenerateOptions:
    """Submit-time validation; each problem is a 422 naming its field."""
    emotion = fields.get("emotion", "").strip() or None
    try:
        emotion_id(emotion)
    except MoDAError as exc:
        raise _unprocessable("emotion", str(exc)) from exc
    try:
        seed = int(fields.get("seed", "").strip() or 0)
    except ValueError as exc:
        raise _unprocessable("seed", "seed must be a whole number") from exc
    if not 0 <= seed < 2**63:
        raise _unprocessable("seed", "seed must lie in [0, 2**63)")
    scales: dict[str, float | None] = {}
    for name in ("cfg_audio", "cfg_emotion"):
        text = fields.get(name, "").strip()
        try:
            scales[name] = float(text) if text else None
        except ValueError as exc:
            raise _unprocessable(name, f"{name} must be a number") from exc
        value = scales[name]
        if value is not None and not 0 <= value <= MAX_GUIDANCE:
            raise _unprocessable(name, f"{name} must lie in [0, {MAX_GUIDANCE:g}]")
    transcript = fields.get("text", "").strip() or None
    if transcript is not None:
        try:
            checked_transcript(transcript)
        except MoDAError as exc:
            raise _unprocessable("text", str(exc)) from exc
    return GenerateOptions(emotion, scales["cfg_audio"], scales["cfg_emotion"], seed, transcript)


def _check_inputs(folder: Path, max_duration: float) -> None:
    """The uploads decode, and the speech is within the server's duration limit (422 naming the field)."""
    from ..media.audio import load_audio
    from ..media.image import load_image

    try:
        load_image(next(folder.glob("image.*")))
    except MoDAError as exc:
        raise _unprocessable("image", str(exc).replace(str(folder) + "/", "")) from exc
    try:
        waveform = load_audio(next(folder.glob("audio.*")), max_duration=max_duration)
    except MoDAError as exc:
        raise _unprocessable("audio", str(exc).replace(str(folder) + "/", "").replace("(--max-duration); ", "")) from exc
    if len(waveform) < MIN_AUDIO_SECONDS * 16000:
        raise _unprocessable("audio", f"the speech is shorter than {MIN_AUDIO_SECONDS} s")


async def _read_upload(request: Request, folder: Path, files: set[str], settings: ServerSettings
                       ) -> tuple[dict[str, str], dict[str, str]]:
    """Stream a multipart body into `folder` (files saved as NAME.suffix); (uploaded file names, text fields)."""
    limit = settings.max_upload_bytes
    length = request.headers.get("content-length")
    if length is not None and not length.isdigit():
        raise HTTPException(400, detail="Content-Length must be a non-negative whole number")
    if length is not None and int(length) > limit:
        raise HTTPException(413, detail=f"the upload is {int(length) / 1e6:.1f} MB; the limit is {limit / 1e6:g} MB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(400, detail="send the files as multipart/form-data")
    limited = Request(request.scope, _limited(request.receive, limit, settings.read_timeout))
    try:
        form = await limited.form(max_files=len(files), max_fields=10, max_part_size=1024)
    except UploadTooLarge as exc:
        raise HTTPException(413, detail=f"the upload is over the limit of {limit / 1e6:g} MB") from exc
    except UploadStalled as exc:
        raise HTTPException(408, detail=f"the upload stalled for {settings.read_timeout:g} s") from exc
    except MultiPartException as exc:
        raise HTTPException(400, detail=f"malformed upload: {exc.message}") from exc
    try:
        names, fields = {}, {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key not in files:
                    raise _unprocessable(key, f"unexpected file field {key!r}")
                suffix = Path(value.filename or "").suffix.lower()
                if suffix not in UPLOAD_SUFFIXES[key]:
                    raise _unprocessable(key, f"{key} must be one of {', '.join(sorted(UPLOAD_SUFFIXES[key]))}")
                with open(folder / f"{key}{suffix}", "wb") as out:
                    shutil.copyfileobj(value.file, out)
                names[key] = Path(value.filename or key).name
            else:
                fields[key] = value
        missing = sorted(files - names.keys())
        if missing:
            raise _unprocessable(missing[0], f"{missing[0]} is required")
        return names, fields
    finally:
        await form.close()


def create_app(pipeline: Pipeline, jobs: JobQueue, settings: ServerSettings, token: str) -> FastAPI:
    app = FastAPI(title="moda", summary="A portrait and speech in, a talking-head video out.",
                  version="1", docs_url="/docs", redoc_url=None)
    static = resources.files("moda") / "app" / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    page = (static / "index.html").read_text().replace("{{TOKEN}}", token)

    def allowed_hosts() -> set[str]:
        names = {settings.host, "localhost", "127.0.0.1", "[::1]"} - {"0.0.0.0", "::"}
        return {f"{name}:{settings.port}" for name in names}

    @app.middleware("http")
    async def defences(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        host = request.headers.get("host", "")
        if host not in allowed_hosts():
            response: Response = JSONResponse({"detail": "unknown Host; use the address moda serve printed"}, 421)
        elif request.method not in ("GET", "HEAD", "OPTIONS") and (
                request.headers.get("origin") not in (None, *(f"http://{h}" for h in allowed_hosts()))):
            response = JSONResponse({"detail": "cross-origin requests are refused"}, 403)
        elif request.method not in ("GET", "HEAD", "OPTIONS") and not secrets.compare_digest(
                request.headers.get("x-moda-token", ""), token):
            response = JSONResponse({"detail": "missing or wrong X-Moda-Token (moda serve prints it)"}, 403)
        else:
            response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    def job_or_404(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, detail="no such job (finished jobs expire)")
        return job

    def describe(job: Job) -> dict[str, Any]:
        return {"id": job.id, "status": job.status, "stage": job.stage, "progress": round(job.progress, 3),
                "position": jobs.position(job) if job.status == "queued" else 0, "error": job.error,
                "video": f"/api/jobs/{job.id}/video" if job.status == "done" else None}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/config")
    def config() -> dict[str, Any]:
        backend = pipeline.backend
        return {"emotions": list(EMOTIONS), "emotions_work": backend.capabilities.emotions,
                "transcripts": backend.capabilities.transcripts,
                "default_cfg_audio": backend.default_guidance, "max_guidance": MAX_GUIDANCE,
                "max_upload_mb": settings.max_upload_bytes / 1e6, "max_duration_s": settings.max_duration,
                "examples": _examples()}

    @app.get("/api/examples/{name}", include_in_schema=False)
    def example(name: str) -> FileResponse:
        files = {Path(item["url"]).name: item for item in _examples()}
        if name not in files:
            raise HTTPException(404, detail="no such example")
        return FileResponse(_example_path(name))

    @app.post("/api/face")
    async def face(request: Request) -> dict[str, Any]:
        """The largest face's box in the uploaded portrait, for the page's preview."""
        from ..face.landmarks import FaceMeshDetector
        from ..media.image import limit_size, load_image

        folder = jobs.new_folder()
        try:
            await _read_upload(request, folder, {"image"}, settings)
            try:
                image = limit_size(load_image(next(folder.glob("image.*"))))
            except MoDAError as exc:
                raise _unprocessable("image", str(exc).replace(str(folder) + "/", "")) from exc
            with FaceMeshDetector() as detector:
                faces = await asyncio.to_thread(detector.detect, image)
            if not faces:
                raise _unprocessable("image", "no face found; give a portrait with one clearly visible, frontal face")
            height, width = image.shape[:2]
            x0, y0, x1, y1 = faces[0].box
            return {"width": width, "height": height, "faces": len(faces),
                    "box": [x0 / width, y0 / height, x1 / width, y1 / height]}
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @app.post("/api/jobs", status_code=202)
    async def submit(request: Request) -> dict[str, Any]:
        folder = jobs.new_folder()
        try:
            uploads, fields = await _read_upload(request, folder, {"image", "audio"}, settings)
            options = _options(fields)
            await asyncio.to_thread(_check_inputs, folder, settings.max_duration)
            job = jobs.submit(folder, options, uploads)
        except QueueFull as exc:
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(429, detail=f"the queue is full ({jobs.max_queued} jobs); try again later") from exc
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return describe(job)

    @app.get("/api/jobs/{job_id}")
    def status(job_id: str) -> dict[str, Any]:
        return describe(job_or_404(job_id))

    @app.get("/api/jobs/{job_id}/video", response_class=FileResponse)
    def video(job_id: str) -> FileResponse:
        job = job_or_404(job_id)
        if job.status != "done":
            raise HTTPException(409, detail=f"the job is {job.status}, not done")
        return FileResponse(job.video, media_type="video/mp4", filename="moda.mp4", content_disposition_type="inline")

    @app.get("/api/jobs/{job_id}/preview")
    def preview(job_id: str) -> Response:
        job = job_or_404(job_id)
        if job.preview is None:
            raise HTTPException(404, detail="no frame rendered yet")
        return Response(job.preview, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        job = job_or_404(job_id)
        jobs.cancel(job)
        return describe(job)

    @app.delete("/api/jobs/{job_id}", status_code=204)
    def delete(job_id: str) -> Response:
        jobs.remove(job_or_404(job_id))
        return Response(status_code=204)

    return app


def _examples() -> list[dict[str, str]]:
    """The shipped sample and the example portraits and speech clips (`assets/examples`)."""
    items = [{"kind": "image", "name": "astronaut (sample)", "url": "/api/examples/portrait.jpg"},
             {"kind": "audio", "name": "espeak-ng (sample)", "url": "/api/examples/speech.wav"}]
    folder = resources.files("moda") / "assets" / EXAMPLES_FOLDER
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        suffix = Path(entry.name).suffix.lower()
        kind = "image" if suffix in UPLOAD_SUFFIXES["image"] else "audio" if suffix in UPLOAD_SUFFIXES["audio"] else None
        if kind:
            items.append({"kind": kind, "name": Path(entry.name).stem.replace("_", " "),
                          "url": f"/api/examples/{entry.name}"})
    return items


def _example_path(name: str) -> Path:
    if name in ("portrait.jpg", "speech.wav"):
        return sample_path(name)
    return Path(str(resources.files("moda") / "assets" / EXAMPLES_FOLDER / name))


class Server:
    """The app on its own socket, served by uvicorn: `serve_forever()` (the CLI) or `start()` / `close()`."""

    def __init__(self, pipeline: Pipeline, settings: ServerSettings = ServerSettings()):
        import uvicorn

        settings.check()
        self.settings = settings
        self.socket = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((settings.host, settings.port))
        except OSError as exc:
            self.socket.close()
            raise MoDAError(f"cannot listen on {settings.host}:{settings.port} ({exc.strerror}); "
                            "choose another --port or --host") from exc
        self.socket.listen(128)
        port = self.socket.getsockname()[1]
        self.settings = settings = ServerSettings(**{**settings.__dict__, "port": port})
        self.token = secrets.token_urlsafe(24)
        self.jobs = JobQueue(pipeline, Path(tempfile.mkdtemp(prefix="moda-serve-")), settings.max_queued,
                             settings.time_limit, settings.ttl, settings.max_duration).start()
        self.app = create_app(pipeline, self.jobs, settings, self.token)
        self.uvicorn = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", limit_concurrency=64,
                                                     timeout_keep_alive=5, timeout_graceful_shutdown=5))
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.settings.host if self.settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
        return f"http://{host}:{self.settings.port}"

    def serve_forever(self) -> None:
        """Serve until a signal stops the process, then shut down gracefully and delete every upload and result.

        uvicorn runs in a worker thread, where it installs no signal handlers: a signal reaches the main thread
        as the process's own exception (SIGINT: KeyboardInterrupt; the CLI turns SIGTERM and SIGHUP into one),
        so the exit status always says which signal stopped it. (Run in the main thread, uvicorn catches the
        signal and raises it again after its shutdown, under asyncio's own SIGINT handler: on a busy machine a
        SIGINT mid-job ended the process with status 0.)"""
        thread = self.start().thread
        try:
            while thread is not None and thread.is_alive():
                thread.join(timeout=0.5)
        finally:
            self.close()

    def start(self) -> Server:
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        while not self.uvicorn.started and self.thread.is_alive():
            threading.Event().wait(0.02)
        return self

    def close(self) -> None:
        self.uvicorn.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.jobs.close()
        self.socket.close()
