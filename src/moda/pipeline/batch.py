"""Many videos with one model load: `moda generate --manifest jobs.csv --out-dir DIR`, also under torchrun.

The manifest is a CSV with a header. Columns: `image` and `audio` (required; relative paths are relative to
the manifest's folder), and optionally `out` (a file name in DIR; default `row-N_IMAGE_AUDIO.mp4`),
`emotion`, `seed`, `cfg_audio`, `cfg_emotion`; empty or missing cells take the defaults given (on the command
line: `--emotion`, `--seed`, `--cfg-audio`, `--cfg-emotion`). Rows whose output exists
are skipped (outputs appear atomically, so a killed run resumes where it stopped); a row that fails is reported
with its reason and the others go on. Under torchrun (or with `--rank/--world-size`) each rank takes every
world-size-th row; rank 0 writes `manifest_report.json` for all (each rank its own without torchrun).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..audio.phones import checked_transcript
from ..distributed import WorkReport, World, gather_report
from ..errors import MoDAError
from ..timebase import DEFAULT_MAX_DURATION
from .generate import GenerateOptions, Pipeline

REQUIRED_COLUMNS = ("image", "audio")
OPTIONAL_COLUMNS = ("out", "emotion", "seed", "cfg_audio", "cfg_emotion", "text")


@dataclass(frozen=True)
class ManifestRow:
    number: int  # 1-based, not counting the header
    out: Path
    image: Path | None = None
    audio: Path | None = None
    options: GenerateOptions = GenerateOptions()
    error: str | None = None  # what is wrong with the row itself


def _number(text: str, kind: type, column: str) -> float | int | None:
    if not text.strip():
        return None
    try:
        return kind(text)
    except ValueError as exc:
        raise ValueError(f"{column} {text!r} is not a{'n integer' if kind is int else ' number'}") from exc


def _row(number: int, values: dict[str, str], folder: Path, out_dir: Path, defaults: GenerateOptions) -> ManifestRow:
    image, audio, given_out = (values.get(column, "").strip() for column in ("image", "audio", "out"))
    out = out_dir / (given_out or f"row-{number}_{Path(image).stem or 'image'}_{Path(audio).stem or 'audio'}.mp4")
    if not image or not audio:
        return ManifestRow(number, out, error="image and audio are both required")
    if given_out and Path(given_out).name != given_out:
        return ManifestRow(number, out, error=f"out {given_out!r} must be a file name in the output folder, not a path")
    try:
        seed, cfg_audio, cfg_emotion = (_number(values.get(column, ""), kind, column)
                                        for column, kind in (("seed", int), ("cfg_audio", float), ("cfg_emotion", float)))
        options = GenerateOptions(values.get("emotion", "").strip() or defaults.emotion,
                                  defaults.cfg_audio if cfg_audio is None else cfg_audio,
                                  defaults.cfg_emotion if cfg_emotion is None else cfg_emotion,
                                  defaults.seed if seed is None else int(seed),
                                  values.get("text", "").strip() or None)
        if options.transcript is not None:
            checked_transcript(options.transcript)
    except (ValueError, MoDAError) as exc:
        return ManifestRow(number, out, error=str(exc))
    return ManifestRow(number, out, folder / image, folder / audio, options)


def read_manifest(path: str | Path, out_dir: str | Path, defaults: GenerateOptions = GenerateOptions()
                  ) -> list[ManifestRow]:
    """The rows of a manifest; a malformed row becomes a row with an `error`, a malformed file a MoDAError."""
    path, out_dir = Path(path), Path(out_dir)
    if not path.is_file():
        raise MoDAError(f"manifest not found: {path}")
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        if missing or unknown:
            raise MoDAError(f"{path}: the header must name the columns image, audio and optionally "
                            f"{', '.join(OPTIONAL_COLUMNS)}; " + ("missing " + ", ".join(missing) if missing else
                                                                  "unknown " + ", ".join(unknown)))
        rows = [_row(number, {k.strip(): v or "" for k, v in values.items() if k is not None}, path.parent, out_dir,
                     defaults) for number, values in enumerate(reader, start=1)]
    if not rows:
        raise MoDAError(f"{path} has a header but no rows")
    seen: dict[Path, int] = {}
    for index, row in enumerate(rows):
        if row.error is None and row.out in seen:
            rows[index] = ManifestRow(row.number, row.out, error=f"out {row.out.name} is also row {seen[row.out]}'s")
        seen.setdefault(row.out, row.number)
    return rows


def generate_manifest(pipeline: Pipeline, manifest: str | Path, out_dir: str | Path, world: World | None = None,
                      progress: bool = True, max_duration: float | None = DEFAULT_MAX_DURATION,
                      defaults: GenerateOptions = GenerateOptions()) -> WorkReport | None:
    """This rank's rows of the manifest; returns the merged report on rank 0 (this rank's own without a process
    group) and writes it to `out_dir`, None on the other ranks."""
    world = world or World.from_env()
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise MoDAError(f"output folder {out_dir} does not exist; create it first")
    report = WorkReport()
    for row in tqdm(world.share(read_manifest(manifest, out_dir, defaults)), desc="manifest", unit="video",
                    disable=not progress or not world.main):
        label = f"row {row.number} ({row.out.name})"
        if row.error is not None:
            report.failed[label] = row.error
        elif row.out.exists():
            report.skipped.append(row.out.name)
        else:
            assert row.image is not None and row.audio is not None
            try:
                pipeline.generate(row.image, row.audio, row.out, row.options, progress=False, max_duration=max_duration)
                report.written.append(row.out.name)
            except MoDAError as exc:
                report.failed[label] = str(exc)
            except Exception as exc:  # noqa: BLE001 - one bad row must not stop the others
                report.failed[label] = f"internal error: {type(exc).__name__}: {exc}"
    return gather_report(world, report, out_dir, "manifest_report")
