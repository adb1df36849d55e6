"""Loading the released LivePortrait weight files into the renderer networks, unchanged.

Files (LivePortrait `pretrained_weights/liveportrait/`): base_models/{appearance_feature_extractor,
motion_extractor, warping_module, spade_generator}.pth hold flat state dicts whose keys match the modules;
retargeting_models/stitching_retargeting_module.pth holds three sub-dicts (`retarget_shoulder` = stitching,
`retarget_mouth` = lip, `retarget_eye` = eye) whose keys may carry DDP's `module.`.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch
from torch import nn

from ..errors import MoDAError
from ..hub import LIVEPORTRAIT_HUB_PREFIX, LIVEPORTRAIT_HUB_REPO
from ..weights import StateDict, read_state_dict

BASE_MODEL_FILES = {
    "appearance": "base_models/appearance_feature_extractor.pth",
    "motion": "base_models/motion_extractor.pth",
    "warping": "base_models/warping_module.pth",
    "spade": "base_models/spade_generator.pth",
}
STITCHING_FILE = "retargeting_models/stitching_retargeting_module.pth"
STITCHING_SUBDICTS = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}
CONFIG_FILE = "renderer_config.json"  # optional: a non-released width, written by LivePortraitConfig.to_json
DEFAULT_ROOT = Path.home() / ".cache" / "moda" / "weights"


def missing_files(directory: Path) -> list[str]:
    return [f for f in BASE_MODEL_FILES.values() if not (directory / f).is_file()]


def resolve_liveportrait(directory: str | Path | None) -> Path:
    """The folder with LivePortrait's files: `directory` if given (it must be complete), else the default
    cache, downloaded from the hub on first use."""
    if directory is not None:
        directory = Path(directory)
        missing = missing_files(directory)
        if missing:
            raise MoDAError(
                f"LivePortrait weights incomplete in {directory}: missing {', '.join(missing)}; download "
                f"{LIVEPORTRAIT_HUB_REPO} (folder liveportrait/) into it"
            )
        return directory
    directory = DEFAULT_ROOT / LIVEPORTRAIT_HUB_PREFIX.rstrip("/")
    return directory if not missing_files(directory) else download_liveportrait(DEFAULT_ROOT)


def fold_spectral_norm(state: StateDict) -> StateDict:
    """Replace each spectrally normalised `X.weight_orig / X.weight_u / X.weight_v` by `X.weight`.

    In eval mode the released hook runs no power iteration: W = weight_orig / sigma, sigma = u . (W_mat v),
    with W_mat = weight_orig reshaped to (out, -1). Folding once makes inference a plain convolution.
    """
    folded = {k: v for k, v in state.items() if not k.endswith(("weight_orig", "weight_u", "weight_v"))}
    for key in state:
        if key.endswith("weight_orig"):
            prefix = key[: -len("weight_orig")]
            weight, u, v = state[key], state[prefix + "weight_u"], state[prefix + "weight_v"]
            sigma = torch.dot(u, weight.reshape(weight.shape[0], -1) @ v)
            folded[prefix + "weight"] = weight / sigma
    return folded


def strip_ddp_prefix(state: StateDict) -> StateDict:
    """Remove every occurrence of `module.` from the keys, as the released loader does."""
    return {k.replace("module.", ""): v for k, v in state.items()}


def load_into(module: nn.Module, state: StateDict, name: str) -> None:
    """Strict load with a one-line error naming the file's first mismatches."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        raise MoDAError(
            f"{name} does not match the network: missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {shapes[:3]}; check the file and the renderer config"
        )
    module.load_state_dict(state, strict=True)


def read_base_model(directory: Path, network: str) -> StateDict:
    state = read_state_dict(directory / BASE_MODEL_FILES[network])
    return fold_spectral_norm(state) if network == "spade" else state


def read_stitching(directory: Path) -> dict[str, StateDict]:
    """The three retargeting MLPs' state dicts; absent file -> {} (stitching disabled, as released)."""
    path = directory / STITCHING_FILE
    if not path.is_file():
        return {}
    checkpoint = read_state_dict(path)
    missing = [sub for sub in STITCHING_SUBDICTS.values() if sub not in checkpoint]
    if missing:
        raise MoDAError(f"{path} lacks the sub-dicts {missing}; is it LivePortrait's stitching_retargeting_module.pth?")
    return {name: strip_ddp_prefix(cast(StateDict, checkpoint[sub])) for name, sub in STITCHING_SUBDICTS.items()}


def download_liveportrait(root: str | Path) -> Path:
    """Fetch the five renderer files from the hub; returns `root/liveportrait` (holding base_models/ ...)."""
    from ..weights import hub_download

    for relative in [*BASE_MODEL_FILES.values(), STITCHING_FILE]:
        hub_download(LIVEPORTRAIT_HUB_REPO, LIVEPORTRAIT_HUB_PREFIX + relative, root)
    return Path(root) / LIVEPORTRAIT_HUB_PREFIX.rstrip("/")


def unfold_spectral_norm(state: StateDict, keys: list[str]) -> StateDict:
    """Inverse of `fold_spectral_norm` for the given `.weight` keys: weight_orig = W with u, v chosen so that
    u . (W v) = 1, which the released loader folds back to exactly W."""
    unfolded = dict(state)
    for key in keys:
        prefix = key[: -len("weight")]
        weight = unfolded.pop(key)
        matrix = weight.reshape(weight.shape[0], -1)
        v = torch.nn.functional.normalize(torch.ones(matrix.shape[1], dtype=weight.dtype), dim=0)
        w = matrix @ v
        unfolded.update({prefix + "weight_orig": weight, prefix + "weight_u": w / w.dot(w), prefix + "weight_v": v})
    return unfolded
