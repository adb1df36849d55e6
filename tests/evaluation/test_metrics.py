import numpy as np
import pytest
import torch

from moda.errors import MoDAError
from moda.evaluation.feature_metrics import fid, frechet_distance, fvd, load_feature_network, sync_scores
from moda.evaluation.metrics import best_lag, clip_metrics, jerk, lag_correlations, peak_lag, pearson


def test_pearson_and_lag():
    t = np.arange(200)
    signal = np.sin(t / 5.0)
    assert pearson(signal, 2 * signal + 1) == pytest.approx(1.0)
    assert pearson(signal, -signal) == pytest.approx(-1.0)
    delayed = np.roll(signal, 3)  # the prediction trails by 3 frames
    lag, corr = best_lag(delayed, signal)
    assert lag == 3 and corr > 0.99


def test_the_peak_lag_is_found_to_a_fraction_of_a_frame():
    t = np.arange(400, dtype=np.float64)
    signal = np.sin(t / 7.0) + 0.5 * np.sin(t / 3.1)
    for delay in (-1.5, -0.4, 0.0, 0.3, 2.6):
        delayed = np.interp(t - delay, t, signal)
        assert peak_lag(lag_correlations(delayed, signal, 4)) == pytest.approx(delay, abs=0.1)
    assert peak_lag({-1: 0.2, 0: 0.5, 1: 0.9}) == 1.0  # a peak at the end of the range stays there


def test_jerk_is_zero_for_constant_acceleration_and_clip_metrics_are_consistent():
    t = np.arange(50, dtype=np.float64)
    assert jerk((0.5 * t**2)[:, None]) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    motion = np.zeros((60, 70), np.float32)
    motion[:, 63] = 1.0
    motion[:, 60 - 3 + 1] = 0  # keep rows consistent
    opening = np.abs(np.sin(np.arange(60) / 4)).astype(np.float32)
    motion[:, 20 * 3 + 1] = opening  # lower inner lip moves down with the opening
    kp = rng.normal(size=(21, 3)).astype(np.float32)
    same = clip_metrics(motion, motion, opening, kp)
    assert same["lip_sync_corr"] == pytest.approx(1.0) and same["lmd_face"] == 0.0 and same["lip_sync_lag_frames"] == 0
    assert same["jerk"] == same["jerk_reference"]


def test_frechet_distance_of_known_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2 + 1  # mean shift 1 per dim, std 2
    # |mu|^2 = 3; trace term: 3 * (1 + 4 - 2 * 2) = 3
    assert frechet_distance(a, b) == pytest.approx(6.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


class Pool(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(-2, -1)).flatten(1), x.std(dim=(-2, -1)).flatten(1)], dim=1)


class Sync(torch.nn.Module):
    def forward(self, clips: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        video = clips.mean(dim=(1, 3, 4))  # (B, 5): brightness of the 5 frames
        audio = mel[:, 0].mean(dim=1).reshape(-1, 5, 4).mean(-1)  # (B, 5): loudness of the 5 frame slots
        return video, audio


def export(module, path, *examples):
    batch = torch.export.Dim("batch", min=2, max=4096)
    shapes = tuple({0: batch} for _ in examples)
    torch.export.save(torch.export.export(module, examples, dynamic_shapes=shapes), str(path))


def test_feature_metric_hooks_with_exported_networks(tmp_path):
    export(Pool(), tmp_path / "pool.pt2", torch.rand(2, 3, 32, 32))
    export(Pool(), tmp_path / "pool_video.pt2", torch.rand(2, 3, 8, 32, 32))
    export(Sync(), tmp_path / "sync.pt2", torch.rand(2, 3, 5, 8, 8), torch.rand(2, 1, 80, 20))
    pool = load_feature_network(tmp_path / "pool.pt2", "FID")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(40)]
    brighter = [np.clip(f.astype(int) + 60, 0, 255).astype(np.uint8) for f in frames]
    assert fid(pool, frames, frames) == pytest.approx(0.0, abs=1e-6)
    assert fid(pool, frames, brighter) > 0.01
    assert fvd(load_feature_network(tmp_path / "pool_video.pt2", "FVD"), frames, brighter, clip=8) > 0.01
    # Sync: video brightness follows audio loudness, so in-sync offset 0 scores best
    sync = load_feature_network(tmp_path / "sync.pt2", "Sync")
    loudness = rng.random(60)
    mouths = (np.repeat(loudness, 8 * 8 * 3).reshape(60, 8, 8, 3) * 255).astype(np.uint8)
    mel = np.repeat(loudness, 4)[:, None].repeat(80, axis=1)
    confidence, distance = sync_scores(sync, mouths, mel)
    shuffled_confidence, _ = sync_scores(sync, mouths, np.roll(mel, 37, axis=0))
    assert confidence > shuffled_confidence and distance < 0.05


def test_missing_feature_network_is_a_clear_error(tmp_path):
    with pytest.raises(MoDAError, match="FID needs a feature network that moda does not ship"):
        load_feature_network(None, "FID")
    (tmp_path / "x.pt2").write_bytes(b"junk")
    with pytest.raises(MoDAError, match="not a torch.export program"):
        load_feature_network(tmp_path / "x.pt2", "FVD")
