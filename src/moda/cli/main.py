"""The `moda` command line."""

from __future__ import annotations

import argparse
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
