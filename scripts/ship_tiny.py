"""Copy a trained tiny generator into the package (what `Pipeline.default()` loads), stored in float16.

    python scripts/ship_tiny.py runs/tiny        # after: moda train --config configs/tiny.toml

float16 halves the wheel's size; the generator computes in float32 after loading, and its motion differs from
the float32 checkpoint's by under 1e-3 (normalised units).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

ASSETS = Path(__file__).resolve().parents[1] / "src" / "moda" / "assets" / "tiny"


def main(run: str) -> None:
    folder = Path(run)
    state = {k: v.half().contiguous() for k, v in load_file(folder / "generator.safetensors").items()}
    config = json.loads((folder / "generator.json").read_text())
    metadata = {"trained_with": "moda train --config configs/tiny.toml"}
    ASSETS.mkdir(parents=True, exist_ok=True)
    save_file(state, ASSETS / "generator.safetensors", metadata=metadata)
    (ASSETS / "generator.json").write_text(json.dumps(config, indent=2))
    shutil.copy(folder / "stats.safetensors", ASSETS / "stats.safetensors")
    print(f"shipped {folder} to {ASSETS}")


if __name__ == "__main__":
    main(sys.argv[1])
