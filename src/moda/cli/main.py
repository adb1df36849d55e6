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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moda", description="MoDA talking-head generation")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "golden-check", help="check this implementation against golden fixtures of the reference code"
    )
    check.add_argument("directory", help="folder with fixture .json/.safetensors pairs")
    check.set_defaults(run=golden_check)
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
