"""`moda score`: lip sync and stability of any talking-head video, measured from its pixels, offline.

No learned sync model: MediaPipe's face mesh gives the mouth and face per frame, PocketSphinx the phone timings
of the speech. Every length is in units of the inter-ocular distance (IOD, eye centre to eye centre), so the
figures do not depend on the video's size or framing.

- mouth opening: inner-lip gap (mesh points 13 and 14) / IOD, per frame;
- envelope correlation: Pearson r of the opening with the speech's loudness envelope, at the best lag within
  +-0.2 s (loudness is a floor, not the target: a mouth that only follows loudness also scores well here);
- vowel vs bilabial contrast: Cohen's d of the opening on open-vowel frames (AA AE AH AO AW AY EH) against
  M / B / P frames, and the share of open-vowel frames that are visibly open (>= 0.08 IOD, about 5 mm) and of
  bilabial frames that are closed (<= 0.03 IOD, about 2 mm); the phone timings are recognised, or with a
  transcript aligned to it (recognition hears phones that were not said: `moda.audio.phones.align_phones`);
- identity drift: after a similarity alignment to the first frame, the mean displacement of the face outline,
  nose and eye corners (points that speech does not move);
- jitter: the mean magnitude of the second temporal difference of those aligned points.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio.phones import BILABIALS, OPEN_VOWELS, Phone, align_phones, phone_track, recognize_phones
from ..errors import MoDAError
from ..face.landmarks import LEFT_EYE, RIGHT_EYE, FaceMeshDetector
from ..media.audio import load_audio
from ..media.video import read_frames_at
from ..timebase import FPS, SAMPLE_RATE
from .metrics import best_lag

OPEN_THRESHOLD = 0.08  # inner-lip gap / IOD above which a mouth is visibly open
CLOSED_THRESHOLD = 0.03  # ... and below which it is closed
MAX_LAG_FRAMES = 5  # +-0.2 s
# d from fewer frames of either kind is rough: with 7 open-vowel frames, one frame moved d by about 1 (measured on
# ../shared/real's something.wav)
FEW_FRAMES = 8
INNER_LIPS = (13, 14)
# Mesh points speech does not move: the face outline above the jaw, the nose, the eye corners.
STABLE_POINTS = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 93, 234, 127, 162, 21, 54, 103, 67, 109,
                 1, 4, 5, 6, 168, 195, 197, 33, 133, 263, 362]


@dataclass
class MouthTrack:
    """Per-frame measurements of a video (NaN where no face was found)."""

    opening: np.ndarray  # (T,) inner-lip gap / IOD
    stable: np.ndarray  # (T, P, 2) stable points / IOD, aligned to the first frame
    faces_found: int


@dataclass
class VideoScore:
    frames: int
    faces_found: int
    envelope_corr: float
    envelope_lag_frames: int
    vowel_bilabial_d: float
    open_vowel_frames: int
    open_vowel_open_share: float
    bilabial_frames: int
    bilabial_closed_share: float
    identity_drift: float
    jitter: float
    phones_from: str  # "recognition" or "transcript"
    opening_mean: float
    opening_std: float
    traces: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        few = min(self.open_vowel_frames, self.bilabial_frames)
        if few < 2:
            contrast = "n/a (needs 2 or more open-vowel and M / B / P frames)"
        elif np.isnan(self.vowel_bilabial_d):
            contrast = "n/a (the opening does not vary on those frames)"
        else:
            contrast = f"{self.vowel_bilabial_d:.2f}" + (f" (from {few} frames of one kind: a rough figure)"
                                                          if few < FEW_FRAMES else "")
        return "\n".join([
            f"frames                      {self.frames} ({self.faces_found} with a face)",
            f"envelope correlation        {self.envelope_corr:.3f} at lag {self.envelope_lag_frames:+d} frames",
            f"vowel vs bilabial (d)       {contrast}",
            f"open vowels visibly open    {_share(self.open_vowel_open_share, self.open_vowel_frames)}",
            f"bilabials closed            {_share(self.bilabial_closed_share, self.bilabial_frames)}",
            f"phone timings from          {self.phones_from}",
            f"mouth opening (IOD)         mean {self.opening_mean:.3f}, std {self.opening_std:.3f}",
            f"identity drift (IOD)        {self.identity_drift:.4f}",
            f"landmark jitter (IOD)       {self.jitter:.4f}",
        ])

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "traces"}, indent=2)


def _share(value: float, frames: int) -> str:
    return f"{100 * value:.0f} % of {frames} frames" if frames else "n/a (none heard)"


def _similarity_align(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """`points` (P, 2) moved by the similarity transform that best maps them onto `reference`."""
    mu_p, mu_r = points.mean(0), reference.mean(0)
    p, r = points - mu_p, reference - mu_r
    u, s, vt = np.linalg.svd(p.T @ r)
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1, d]) @ vt
    scale = (s * [1, d]).sum() / (p**2).sum()
    return scale * p @ rotation + mu_r


def track_mouth(frames, detector: FaceMeshDetector) -> MouthTrack:
    openings, stable, reference, found = [], [], None, 0
    for frame in frames:
        faces = detector.detect(frame)
        if not faces:
            openings.append(np.nan)
            stable.append(np.full((len(STABLE_POINTS), 2), np.nan))
            continue
        points = faces[0].landmarks
        iod = float(np.linalg.norm(points[LEFT_EYE].mean(0) - points[RIGHT_EYE].mean(0)))
        openings.append(float(np.linalg.norm(points[INNER_LIPS[0]] - points[INNER_LIPS[1]])) / iod)
        normalized = points[STABLE_POINTS] / iod
        reference = normalized if reference is None else reference
        stable.append(_similarity_align(normalized, reference))
        found += 1
    return MouthTrack(np.array(openings), np.array(stable), found)


def loudness_envelope(waveform: np.ndarray, frames: int) -> np.ndarray:
    """(frames,) RMS per video frame, smoothed over 3 frames."""
    per_frame = SAMPLE_RATE // FPS
    padded = np.zeros(frames * per_frame, np.float32)
    padded[: min(len(waveform), len(padded))] = waveform[: len(padded)]
    rms = np.sqrt((padded.reshape(frames, per_frame) ** 2).mean(1))
    return np.convolve(rms, np.ones(3) / 3, mode="same")


def cohens_d(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    pooled = np.sqrt(((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2))
    return float((a.mean() - b.mean()) / pooled) if pooled > 0 else float("nan")


def score_tracks(track: MouthTrack, waveform: np.ndarray, phones: list[Phone] | None = None) -> VideoScore:
    """Scores from a mouth track and the speech (16 kHz) that goes with it; `phones` are its phone timings
    (default: recognised from the speech)."""
    frames = len(track.opening)
    valid = ~np.isnan(track.opening)
    opening = np.where(valid, track.opening, np.nanmean(track.opening) if valid.any() else 0.0)
    envelope = loudness_envelope(waveform, frames)
    lag, corr = best_lag(opening, envelope, MAX_LAG_FRAMES)
    labels = phone_track(recognize_phones(waveform) if phones is None else phones, frames)
    vowels = np.array([label in OPEN_VOWELS for label in labels]) & valid
    bilabials = np.array([label in BILABIALS for label in labels]) & valid
    stable = track.stable[valid]
    drift = float(np.linalg.norm(stable - stable[:1], axis=-1).mean()) if len(stable) else float("nan")
    jitter = float(np.linalg.norm(np.diff(stable, n=2, axis=0), axis=-1).mean()) if len(stable) > 2 else 0.0
    share = (lambda mask, test: float(test(opening[mask]).mean()) if mask.any() else float("nan"))  # noqa: E731
    return VideoScore(
        frames=frames, faces_found=track.faces_found, envelope_corr=corr, envelope_lag_frames=lag,
        vowel_bilabial_d=cohens_d(opening[vowels], opening[bilabials]),
        open_vowel_frames=int(vowels.sum()), open_vowel_open_share=share(vowels, lambda x: x >= OPEN_THRESHOLD),
        bilabial_frames=int(bilabials.sum()), bilabial_closed_share=share(bilabials, lambda x: x <= CLOSED_THRESHOLD),
        identity_drift=drift, jitter=jitter, phones_from="recognition" if phones is None else "transcript",
        opening_mean=float(opening.mean()), opening_std=float(opening.std()),
        traces={"opening": opening.tolist(), "envelope": envelope.tolist(),
                "open_vowel": vowels.astype(float).tolist(), "bilabial": bilabials.astype(float).tolist()},
    )


def score_video(video: str | Path, audio: str | Path | None = None, transcript: str | None = None) -> VideoScore:
    """Score `video` against `audio` (default: the video's own sound track); with the `transcript` of what is
    said, its phones are aligned to the speech instead of recognised."""
    source = audio if audio is not None else video
    try:
        waveform = load_audio(source)
    except MoDAError as exc:
        if audio is None:
            raise MoDAError(f"{video} has no usable sound track ({exc}); pass the speech with --audio") from exc
        raise
    phones = align_phones(waveform, transcript) if transcript is not None else None  # a bad transcript fails first
    with FaceMeshDetector() as detector:
        track = track_mouth(read_frames_at(video, FPS), detector)
    if track.faces_found == 0:
        raise MoDAError(f"no face found in any frame of {video}; moda score needs a talking face")
    return score_tracks(track, waveform, phones)


def plot_score(score: VideoScore, path: str | Path) -> Path:
    """Mouth opening against the speech envelope, with open-vowel and bilabial frames marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(score.frames) / FPS
    opening, envelope = np.array(score.traces["opening"]), np.array(score.traces["envelope"])
    figure, axis = plt.subplots(figsize=(10, 3.5))
    for mask, color, label in ((score.traces["open_vowel"], "tab:orange", "open vowel"),
                               (score.traces["bilabial"], "tab:blue", "M / B / P")):
        axis.fill_between(t, 0, 1, where=np.array(mask) > 0, color=color, alpha=0.2, label=label,
                          transform=axis.get_xaxis_transform(), step="mid")
    axis.plot(t, opening, color="black", label="mouth opening (IOD)")
    axis.plot(t, envelope / (envelope.max() + 1e-8) * max(opening.max(), OPEN_THRESHOLD), color="0.6",
              label="speech envelope (scaled)")
    axis.axhline(OPEN_THRESHOLD, color="tab:orange", linestyle=":")
    axis.axhline(CLOSED_THRESHOLD, color="tab:blue", linestyle=":")
    axis.set_xlabel("seconds")
    axis.set_title(f"envelope r = {score.envelope_corr:.2f}, vowel vs bilabial d = {score.vowel_bilabial_d:.2f}")
    axis.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)
