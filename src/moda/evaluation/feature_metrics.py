"""FID, FVD and Sync-C / Sync-D with feature networks the user supplies.

moda ships no weights for Inception, I3D or SyncNet (none can be downloaded here, and their licences vary),
so these metrics take `torch.export` programs (`.pt2`, saved with `torch.export.save`; loading runs no
pickled code) with a small contract:

  FID   `model(frames)` with frames (B, 3, H, W) RGB in [0, 1] -> (B, F) features (e.g. Inception pool3)
  FVD   `model(clips)` with clips (B, 3, T, H, W) in [0, 1] -> (B, F) features (e.g. I3D logits)
  Sync  `model(clips, mel)` with (B, 3, 5, H, W) mouth crops and (B, 1, 80, 20) log-mel windows of the same
        0.2 s -> (video embeddings (B, F), audio embeddings (B, F)), as SyncNet computes them
Export with a dynamic batch dimension (`torch.export.Dim`), since batches vary.

Sync-D is the smallest mean audio-video embedding distance over offsets of -15..15 frames, Sync-C the
median distance minus that minimum (Chung & Zisserman's confidence).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import MoDAError

FeatureNetwork = Callable[..., torch.Tensor]


def load_feature_network(path: str | Path | None, metric: str) -> FeatureNetwork:
    if path is None or not Path(path).is_file():
        raise MoDAError(
            f"{metric} needs a feature network that moda does not ship; pass a torch.export program (.pt2) "
            f"(see moda.evaluation.feature_metrics){'' if path is None else f' (not found: {path})'}"
        )
    try:
        return torch.export.load(str(path)).module()
    except (RuntimeError, ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise MoDAError(f"{path} is not a torch.export program ({type(exc).__name__}: {exc})") from exc


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a (N, F) and b (M, F)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)  # eigenvalues of (A^1/2 B A^1/2)
    trace_sqrt = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


@torch.no_grad()
def _features(model: FeatureNetwork, batches: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([model(b).reshape(b.shape[0], -1) for b in batches]).double().numpy()


def fid(model: FeatureNetwork, real: list[np.ndarray], generated: list[np.ndarray], batch: int = 16) -> float:
    """FID between two sets of (H, W, 3) uint8 frames."""
    def batches(frames):
        tensor = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
        return list(tensor.split(batch))

    return frechet_distance(_features(model, batches(real)), _features(model, batches(generated)))


def fvd(model: FeatureNetwork, real: list[np.ndarray], generated: list[np.ndarray], clip: int = 16) -> float:
    """FVD between two videos given as frame lists, cut into `clip`-frame pieces."""
    def clips(frames):
        count = len(frames) // clip
        if count < 2:
            raise MoDAError(f"FVD needs at least {2 * clip} frames per video")
        video = torch.from_numpy(np.stack(frames[: count * clip])).float() / 255  # (N, H, W, 3)
        return [video.reshape(count, clip, *video.shape[1:]).permute(0, 4, 1, 2, 3)]

    return frechet_distance(_features(model, clips(real)), _features(model, clips(generated)))


@torch.no_grad()
def sync_scores(model: FeatureNetwork, mouths: np.ndarray, mel: np.ndarray, max_offset: int = 15) -> tuple[float, float]:
    """(Sync-C, Sync-D) for mouth crops (T, H, W, 3) uint8 and log-mel (T * 4, 80) at 100 Hz."""
    frames = len(mouths)
    if frames < 5 + 2 * max_offset:
        raise MoDAError(f"Sync-C/D need at least {5 + 2 * max_offset} frames")
    video = torch.from_numpy(mouths).float().permute(0, 3, 1, 2) / 255
    clips = torch.stack([video[i : i + 5].permute(1, 0, 2, 3) for i in range(frames - 4)])
    windows = torch.stack([torch.from_numpy(mel[4 * i : 4 * i + 20].T).float()[None] for i in range(frames - 4)])
    video_emb, audio_emb = model(clips, windows)
    distances = []
    for offset in range(-max_offset, max_offset + 1):
        lo, hi = max(0, -offset), min(len(video_emb), len(audio_emb) - offset)
        distances.append(torch.nn.functional.pairwise_distance(video_emb[lo:hi], audio_emb[lo + offset : hi + offset]).mean())
    by_offset = torch.stack(distances)
    return float(by_offset.median() - by_offset.min()), float(by_offset.min())
