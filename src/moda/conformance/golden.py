"""`moda golden-check DIR`: every golden fixture in DIR, MoDA's or LivePortrait's, checked by kind.

Each fixture is a `<name>.json` (metadata, constructor arguments) beside `<name>.safetensors` (inputs,
outputs, intermediates); each checker rebuilds the computation from the metadata alone, so fixtures of other
widths and seeds work too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from . import liveportrait, moda
from .core import FixtureResult, read_json


def run_fixture(meta_path: Path) -> FixtureResult | None:
    """Check one fixture; None when the JSON is not a fixture this project knows."""
    meta = read_json(meta_path)
    try:
        for family in (moda, liveportrait):
            result = family.run_fixture(meta_path, meta)
            if result is not None:
                return result
    except FileNotFoundError as exc:
        return FixtureResult(meta_path.stem, problems=[f"fixture file missing: {exc.filename or exc}"])
    except KeyError as exc:
        return FixtureResult(meta_path.stem, problems=[f"fixture lacks the entry {exc}"])
    return None


def run_all(directory: str | Path) -> Iterator[FixtureResult]:
    """Check every known fixture in `directory`, yielding results as they finish."""
    for path in sorted(Path(directory).glob("*.json")):
        result = run_fixture(path)
        if result is not None:
            yield result
