"""The server's job queue: one worker thread runs jobs in order, each with a time limit and cancellable.

A job stops at the next generator window or rendered frame once it is cancelled or over its time limit
(`Pipeline.generate`'s progress callback raises), so a bad job fails alone and the queue moves on. Finished jobs
and their files are removed after `ttl` seconds.
"""

from __future__ import annotations

import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MoDAError
from ..pipeline.generate import GenerateOptions, Pipeline

PREVIEW_EVERY = 5  # rendered frames between live-preview images
PREVIEW_SIDE = 320  # pixels, the longer side of a preview image


class QueueFull(Exception):
    pass


class Stopped(Exception):
    """Raised inside a running job to end it: cancelled, or over its time limit."""


@dataclass
class Job:
    id: str
    folder: Path
    options: GenerateOptions
    uploads: dict[str, str]  # field name -> the uploaded file's own name (what error messages show)
    status: str = "queued"  # queued, running, done, failed, cancelled
    stage: str = "queued"  # queued, motion, render, done
    progress: float = 0.0  # of the current stage, 0..1
    error: str = ""
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    preview: bytes | None = None  # the latest rendered frame, JPEG

    @property
    def video(self) -> Path:
        return self.folder / "result.mp4"

    def file(self, name: str) -> Path:
        return next(self.folder.glob(f"{name}.*"))

    def public_error(self, message: str) -> str:
        """`message` with the server's file names replaced by the uploads' own (no server paths leak)."""
        for name, original in self.uploads.items():
            message = message.replace(str(self.file(name)), original)
        return message.replace(str(self.folder), "upload")


@dataclass
class JobQueue:
    pipeline: Pipeline
    root: Path
    max_queued: int = 16
    time_limit: float = 600.0  # seconds a job may run
    ttl: float = 3600.0  # seconds a finished job and its files are kept
    max_duration: float = 120.0  # seconds of speech per job
    jobs: dict[str, Job] = field(default_factory=dict)
    pending: queue.Queue[Job | None] = field(default_factory=queue.Queue)
    lock: threading.Lock = field(default_factory=threading.Lock)
    worker: threading.Thread | None = None

    def start(self) -> JobQueue:
        self.worker = threading.Thread(target=self._work, daemon=True, name="moda-worker")
        self.worker.start()
        return self

    def new_folder(self) -> Path:
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def submit(self, folder: Path, options: GenerateOptions, uploads: dict[str, str]) -> Job:
        """Queue the job whose inputs are in `folder` (files named image.* and audio.*)."""
        self.expire()
        with self.lock:
            if sum(job.status == "queued" for job in self.jobs.values()) >= self.max_queued:
                raise QueueFull
            job = Job(uuid.uuid4().hex, folder, options, uploads)
            self.jobs[job.id] = job
        self.pending.put(job)
        return job

    def get(self, job_id: str) -> Job | None:
        self.expire()
        with self.lock:
            return self.jobs.get(job_id)

    def position(self, job: Job) -> int:
        """Jobs queued ahead of `job`."""
        with self.lock:
            return sum(other.status == "queued" and other.created < job.created for other in self.jobs.values())

    def cancel(self, job: Job) -> None:
        job.cancel.set()
        with self.lock:
            if job.status == "queued":
                self._finish(job, "cancelled", "cancelled")

    def remove(self, job: Job) -> None:
        self.cancel(job)
        with self.lock:
            self.jobs.pop(job.id, None)
            if job.status != "running":
                shutil.rmtree(job.folder, ignore_errors=True)

    def expire(self) -> None:
        now = time.monotonic()
        with self.lock:
            old = [job for job in self.jobs.values() if job.finished is not None and now - job.finished > self.ttl]
            for job in old:
                del self.jobs[job.id]
                shutil.rmtree(job.folder, ignore_errors=True)

    def close(self) -> None:
        """Stop the running job, end the worker and delete every job's files."""
        with self.lock:
            for job in self.jobs.values():
                job.cancel.set()
        self.pending.put(None)
        if self.worker is not None:
            self.worker.join(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def _finish(self, job: Job, status: str, error: str = "") -> None:
        job.status, job.error, job.finished = status, error, time.monotonic()
        if status == "done":
            job.stage, job.progress = "done", 1.0

    def _work(self) -> None:
        while True:
            try:
                job = self.pending.get(timeout=60)
            except queue.Empty:
                self.expire()
                continue
            if job is None:
                return
            with self.lock:
                if job.status != "queued":
                    continue
                job.status = "running"
            self._run(job)
            if job.id not in self.jobs:  # removed while it ran
                shutil.rmtree(job.folder, ignore_errors=True)

    def _run(self, job: Job) -> None:
        deadline = time.monotonic() + self.time_limit

        def on_progress(stage: str, done: int, total: int, frame: np.ndarray | None) -> None:
            if job.cancel.is_set():
                raise Stopped("cancelled")
            if time.monotonic() > deadline:
                raise Stopped(f"the job took longer than the server's limit of {self.time_limit:g} s")
            if job.stage != "render" or stage == "render":  # motion runs a window ahead of rendering
                job.stage, job.progress = stage, done / max(total, 1)
            if frame is not None and (done % PREVIEW_EVERY == 1 or done == total):
                job.preview = _jpeg(frame)

        try:
            self.pipeline.generate(job.file("image"), job.file("audio"), job.video, job.options, progress=False,
                                   max_duration=self.max_duration, on_progress=on_progress)
            self._finish(job, "done")
        except Stopped as stop:
            self._finish(job, "cancelled" if job.cancel.is_set() else "failed", str(stop))
        except MoDAError as exc:
            self._finish(job, "failed", job.public_error(str(exc)))
        except Exception as exc:  # noqa: BLE001 - a job must never take the worker down
            self._finish(job, "failed", job.public_error(f"internal error: {type(exc).__name__}: {exc}"))


def _jpeg(frame: np.ndarray) -> bytes:
    import cv2

    scale = PREVIEW_SIDE / max(frame.shape[:2])
    small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else frame
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return data.tobytes() if ok else b""
