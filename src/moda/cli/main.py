"""The `moda` command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import MoDAError


def golden_check(args: argparse.Namespace) -> int:
    from ..conformance.golden import run_all

    directory = Path(args.directory)
    if not directory.is_dir():
        raise MoDAError(f"fixture directory not found: {directory}")
    results = []
    for result in run_all(directory):
        print(result.summary(), flush=True)
        results.append(result)
    if not results:
        raise MoDAError(f"no golden fixtures (*.json with a known layout) in {directory}")
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def reenact(args: argparse.Namespace) -> int:
    import torch

    from ..pipeline.reenact import reenact as run_reenact
    from ..pipeline.video import check_output_path
    from ..renderer.liveportrait import LivePortraitRenderer
    from ..renderer.loading import resolve_liveportrait

    check_output_path(args.out, args.overwrite)  # before loading anything heavy
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    renderer = LivePortraitRenderer.from_pretrained(resolve_liveportrait(args.weights)).to(device)
    if args.precision == "bf16":
        renderer.optimize_for_inference(torch.bfloat16)
    out = run_reenact(args.source, args.driving, args.out, renderer, overwrite=args.overwrite,
                      batch_size=args.batch_size, driving_multiplier=args.driving_multiplier,
                      progress=not args.quiet)
    print(f"wrote {out}")
    return 0


def preprocess(args: argparse.Namespace) -> int:
    import torch

    from ..renderer.liveportrait import LivePortraitRenderer
    from ..renderer.loading import resolve_liveportrait
    from ..training.preprocess import preprocess as run_preprocess
    from ..training.preprocess import read_emotion_labels

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    labels = read_emotion_labels(args.emotions)
    if args.audio_features == "logmel":
        from ..audio.logmel import LogMelExtractor

        features = LogMelExtractor()
    else:
        from ..audio.features import AudioFeatureExtractor
        from ..audio.hubert import HUBERT_HUB_ID, HubertFrameEncoder

        features = AudioFeatureExtractor(HubertFrameEncoder.from_pretrained(args.hubert or HUBERT_HUB_ID).to(device))
    renderer = LivePortraitRenderer.from_pretrained(resolve_liveportrait(args.weights)).to(device)
    report = run_preprocess(args.videos, args.out, renderer, features, labels, progress=not args.quiet)
    for video, reason in report.failed.items():
        print(f"skipped {video.name}: {reason}", file=sys.stderr)
    print(f"{len(report.written)} written, {len(report.skipped)} already there, {len(report.failed)} failed")
    return 1 if report.failed and not report.written and not report.skipped else 0


def train(args: argparse.Namespace) -> int:
    from ..training.config import TrainConfig
    from ..training.trainer import train as run_training

    config = TrainConfig.from_toml(args.config, steps=args.steps, output=args.output)
    exported = run_training(config, resume=not args.no_resume, progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"wrote {exported}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moda", description="MoDA talking-head generation")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "golden-check", help="check this implementation against golden fixtures of the reference code"
    )
    check.add_argument("directory", help="folder with fixture .json/.safetensors pairs")
    check.set_defaults(run=golden_check)

    reenactment = commands.add_parser(
        "reenact", help="animate a portrait with the motion of a driving video (LivePortrait renderer)"
    )
    reenactment.add_argument("--source", required=True, help="portrait image (jpg, png, webp, ...)")
    reenactment.add_argument("--driving", required=True, help="driving video of a face; its sound is kept")
    reenactment.add_argument("--out", required=True, help="output .mp4 (H.264 + AAC)")
    reenactment.add_argument("--weights", help="folder with LivePortrait's base_models/ and retargeting_models/ "
                             "(default: downloaded to ~/.cache/moda/weights/liveportrait)")
    reenactment.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    reenactment.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                             help="renderer compute precision; bf16 is ~2-3x faster on CPUs with AMX and on GPUs")
    reenactment.add_argument("--batch-size", type=int, default=8)
    reenactment.add_argument("--driving-multiplier", type=float, default=1.0, help="scale of the transferred motion")
    reenactment.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    reenactment.add_argument("--quiet", action="store_true", help="no progress bar")
    reenactment.set_defaults(run=reenact)

    prep = commands.add_parser("preprocess", help="talking-head videos -> training shards")
    prep.add_argument("--videos", required=True, help="folder of videos (mp4, mov, mkv, webm, avi)")
    prep.add_argument("--out", required=True, help="folder for the shards (*.clip.safetensors)")
    prep.add_argument("--weights", help="LivePortrait weights folder (default: the download cache)")
    prep.add_argument("--audio-features", choices=["hubert", "logmel"], default="hubert")
    prep.add_argument("--hubert", help="HuBERT folder or hub id (default TencentGameMate/chinese-hubert-base)")
    prep.add_argument("--emotions", help="CSV of `video file name, emotion` rows")
    prep.add_argument("--device", help="cpu or cuda")
    prep.add_argument("--quiet", action="store_true", help="no progress bar")
    prep.set_defaults(run=preprocess)

    training = commands.add_parser(
        "train", help="train the motion generator (flow matching); several processes with torchrun"
    )
    training.add_argument("--config", required=True, help="TOML file (see moda.training.config)")
    training.add_argument("--steps", type=int, help="override the number of steps")
    training.add_argument("--output", help="override the output folder")
    training.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    training.add_argument("--quiet", action="store_true", help="no progress bar")
    training.set_defaults(run=train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except MoDAError as exc:
        print(f"moda: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
