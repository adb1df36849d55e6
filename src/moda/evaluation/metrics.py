"""Motion metrics: lip sync against ground-truth mouth opening, landmark distance, diversity, smoothness."""

from __future__ import annotations

import numpy as np
import torch

from ..motion.keypoints import LIP_ROWS, head_rotation, transform_keypoints
from ..motion.landmark_space import mouth_opening
from ..motion.vector import ANGLES, EXPRESSION, HeadMotion


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def lag_correlations(predicted: np.ndarray, reference: np.ndarray, max_lag: int = 10) -> dict[int, float]:
    """Pearson r at each lag from -max_lag to max_lag (positive: the prediction trails the reference); lags that
    leave fewer than 3 overlapping samples are left out."""
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            p, r = predicted[lag:], reference[: len(reference) - lag]
        else:
            p, r = predicted[:lag], reference[-lag:]
        if len(p) > 2:
            out[lag] = pearson(p, r)
    return out


def peak_lag(correlations: dict[int, float]) -> float:
    """The lag at which `lag_correlations` peak, to a fraction of a step: the vertex of the parabola through the
    best whole lag and its two neighbours (the best whole lag itself at the ends of the range)."""
    lags = sorted(correlations)
    best = max(lags, key=correlations.__getitem__)
    if best in (lags[0], lags[-1]):
        return float(best)
    left, centre, right = correlations[best - 1], correlations[best], correlations[best + 1]
    bend = left - 2 * centre + right
    return best + (0.5 * (left - right) / bend if bend < 0 else 0.0)


def best_lag(predicted: np.ndarray, reference: np.ndarray, max_lag: int = 10) -> tuple[int, float]:
    """(lag in frames, correlation at that lag); positive lag: the prediction trails the reference."""
    best = (0, -2.0)
    for item in lag_correlations(predicted, reference, max_lag).items():
        best = max(best, item, key=lambda x: x[1])
    return best


def driven_keypoints(motion: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """(T, 21, 3) driven keypoints of (T, 70) de-normalised motion on canonical keypoints kp (63,)."""
    m = HeadMotion.from_vector(torch.from_numpy(motion).float())
    canonical = torch.from_numpy(kp).float().reshape(1, -1, 3)
    return transform_keypoints(canonical, head_rotation(m), m.exp, m.scale, m.t).numpy()


def jerk(trajectory: np.ndarray) -> float:
    """Mean magnitude of the third temporal difference (per frame^3) of (T, ...) trajectories."""
    return float(np.abs(np.diff(trajectory, n=3, axis=0)).mean()) if len(trajectory) > 3 else 0.0


def clip_metrics(generated: np.ndarray, reference: np.ndarray, mouth_open: np.ndarray, kp: np.ndarray) -> dict[str, float]:
    """Per-clip metrics for de-normalised (T, 70) generated and ground-truth motion."""
    opening = mouth_opening(generated)
    lag, lag_corr = best_lag(opening, mouth_open)
    gen_kp, ref_kp = driven_keypoints(generated, kp), driven_keypoints(reference, kp)
    distance = np.linalg.norm(gen_kp - ref_kp, axis=-1)
    return {
        "lip_sync_corr": pearson(opening, mouth_open),
        "lip_sync_lag_frames": float(lag),
        "lip_sync_corr_at_lag": lag_corr,
        "lmd_mouth": float(distance[:, LIP_ROWS].mean()),
        "lmd_face": float(distance.mean()),
        "pose_std_deg": float(generated[:, ANGLES].std(0).mean()),
        "pose_std_deg_reference": float(reference[:, ANGLES].std(0).mean()),
        "expression_std": float(generated[:, EXPRESSION].std(0).mean()),
        "expression_std_reference": float(reference[:, EXPRESSION].std(0).mean()),
        "jerk": jerk(gen_kp),
        "jerk_reference": jerk(ref_kp),
    }
