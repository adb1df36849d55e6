"""Where the released models live on disk, in the two layouts `--weights DIR` accepts, and how to fetch them.

The authors' hub repository `lixinyizju/moda` is cloned by users as `pretrained_weights/`:

    moda/net-200.pth                                         the MoDA generator (flat state dict)
    audio/chinese-hubert-base/                               HuBERT (config.json + weights)
    decode/v1/first_stage/base_models/*.pth                  LivePortrait F, M, W, G
    decode/v1/first_stage/retargeting_models/stitching_retargeting_module.pth

The motion statistics (`mean.pt`) live in the authors' code repository, not in the weights; without a
`moda/mean.pt` the package's own copy of the released statistics is used. The layout this project's older
`moda download` wrote is accepted too: moda/net-200.pth + moda/mean.pt, chinese-hubert-base/, liveportrait/.
A `moda/generator.json` ({"model": DiTConfig fields}) selects a non-released generator width, and a
`renderer_config.json` beside LivePortrait's `base_models/` a non-released renderer width.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import MoDAError, WeightsNotFoundError
from ..hub import HUBERT_HUB_ID, LIVEPORTRAIT_HUB_PREFIX, LIVEPORTRAIT_HUB_REPO, MODA_HUB_REPO
from ..renderer.loading import BASE_MODEL_FILES, STITCHING_FILE

GENERATOR_FILE = "moda/net-200.pth"
HUBERT_FILES = ("config.json", "pytorch_model.bin")
HUBERT_WEIGHTS = ("pytorch_model.bin", "model.safetensors")
RENDERER_FILES = (*BASE_MODEL_FILES.values(), STITCHING_FILE)


@dataclass(frozen=True)
class WeightsLayout:
    """Relative locations of the released files in one folder layout."""

    name: str
    hubert: str  # folder
    liveportrait: str  # folder holding base_models/ and retargeting_models/
    stats: str  # motion statistics; optional (the package ships the released values)

    def required(self) -> list[str]:
        """Every file the released pipeline reads, relative to the weights folder (HuBERT by its config)."""
        return [GENERATOR_FILE, f"{self.hubert}/config.json", *(f"{self.liveportrait}/{f}" for f in RENDERER_FILES)]


AUTHORS = WeightsLayout("the authors' pretrained_weights", "audio/chinese-hubert-base", "decode/v1/first_stage",
                        "moda/mean.pt")
LEGACY = WeightsLayout("moda's earlier download", "chinese-hubert-base", "liveportrait", "moda/mean.pt")
LAYOUTS = (AUTHORS, LEGACY)


@dataclass(frozen=True)
class ReleasedFiles:
    """The resolved paths of one weights folder."""

    layout: WeightsLayout
    generator: Path
    generator_config: Path | None
    stats: Path
    hubert: Path
    liveportrait: Path


def packaged_stats() -> Path:
    """The released motion statistics (`src/datasets/mean.pt` of the authors' code), shipped in the package."""
    return Path(str(resources.files("moda") / "assets" / "motion_stats_released.safetensors"))


def _missing(folder: Path, layout: WeightsLayout) -> list[str]:
    missing = [f for f in layout.required() if not (folder / f).is_file()]
    hubert = folder / layout.hubert
    if not any((hubert / name).is_file() for name in HUBERT_WEIGHTS):
        missing.append(f"{layout.hubert}/{HUBERT_WEIGHTS[0]}")
    return missing


def resolve_released(folder: str | Path) -> ReleasedFiles:
    """The released files in `folder`, in whichever layout it has; one line naming the first missing file if
    neither layout is complete."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MoDAError(f"weights folder {folder} not found; run `moda download --out {folder}`")
    missing = {layout: _missing(folder, layout) for layout in LAYOUTS}
    layout = min(LAYOUTS, key=lambda candidate: len(missing[candidate]))  # the closest one; AUTHORS on a tie
    if missing[layout]:
        raise MoDAError(f"weights folder {folder} is incomplete ({layout.name} layout): missing "
                        f"{folder / missing[layout][0]}; run `moda download --out {folder}` or copy the file there")
    config = folder / "moda" / "generator.json"
    stats = folder / layout.stats
    return ReleasedFiles(layout, folder / GENERATOR_FILE, config if config.is_file() else None,
                         stats if stats.is_file() else packaged_stats(), folder / layout.hubert,
                         folder / layout.liveportrait)


def liveportrait_folder(folder: str | Path) -> Path:
    """LivePortrait's folder inside `folder`: the folder itself (it holds base_models/), or the one of a
    weights layout (the authors' decode/v1/first_stage, or liveportrait/)."""
    folder = Path(folder)
    for candidate in (folder, *(folder / layout.liveportrait for layout in LAYOUTS)):
        if (candidate / "base_models").is_dir():
            return candidate
    return folder


def download_released(folder: str | Path, repo: str = MODA_HUB_REPO) -> Path:
    """Fetch what the released pipeline reads into `folder`, in the authors' layout.

    Only those files are taken from `repo` (allow-patterns, with huggingface_hub's progress bars and resume);
    LivePortrait's and HuBERT's files that `repo` lacks come from their own repositories. Offline, one line says
    what to copy where.
    """
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    patterns = [GENERATOR_FILE, f"{AUTHORS.hubert}/*", *(f"{AUTHORS.liveportrait}/{f}" for f in RENDERER_FILES)]
    fallbacks = {f"{AUTHORS.liveportrait}/{f}": (LIVEPORTRAIT_HUB_REPO, LIVEPORTRAIT_HUB_PREFIX + f) for f in RENDERER_FILES}
    fallbacks.update({f"{AUTHORS.hubert}/{f}": (HUBERT_HUB_ID, f) for f in HUBERT_FILES})
    try:
        snapshot_download(repo, local_dir=str(folder), allow_patterns=patterns)
        for target, (source_repo, filename) in fallbacks.items():
            present = [target] if not target.endswith(HUBERT_WEIGHTS[0]) else [
                f"{AUTHORS.hubert}/{name}" for name in HUBERT_WEIGHTS]
            if not any((folder / p).is_file() for p in present):
                with tempfile.TemporaryDirectory(dir=folder) as staging:
                    fetched = hf_hub_download(source_repo, filename, local_dir=staging)
                    (folder / target).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(fetched, folder / target)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise WeightsNotFoundError(
            f"could not download the released weights ({type(exc).__name__}); when offline, copy a clone of the hub "
            f"repository {repo} (the authors' pretrained_weights folder) to {folder}"
        ) from exc
    if not (folder / GENERATOR_FILE).is_file():
        raise WeightsNotFoundError(f"the hub repository {repo} has no {GENERATOR_FILE}; pass --moda-repo with the "
                                   "repository that holds the MoDA weights")
    return folder
