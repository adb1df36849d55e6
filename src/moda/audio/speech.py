"""The default mode's speech front-end: what is said, not who says it or how it was recorded.

Per 10 ms (four sub-frames per 25 fps video frame, laid out like HuBERT's (T, layers, width) features):
  - the mouth class of the recognised phone (`moda.audio.phones`, 12 classes, one-hot);
  - loudness in dB relative to the surrounding speech's own level (loudness- and microphone-invariant);
  - voicing (normalised autocorrelation peak at 60-400 Hz; language-independent);
  - 16 log-mel bands, mean- and variance-normalised over the surrounding audio (removes the channel).
The features of each block of 80 frames (3.2 s, one generator window) are computed from that block and a little
audio around it (statistics: 1 s before, 0.4 s after; phones: 0.3 s before, 0.4 s after) and nothing else, so
offline and streaming features are identical, streaming waits 0.4 s past a window, and long audio costs
memory per block only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import MoDAError
from ..timebase import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
from .logmel import LogMelExtractor
from .phones import HOP, SILENCE_FLOOR_DB, VISEMES, PhoneSource, heard_phones_in_window, speech_level_db

SUBFRAMES = SAMPLES_PER_FRAME // HOP  # 10 ms steps per video frame (4)
MEL_BANDS = 16
FEATURE_DIM = len(VISEMES) + 2 + MEL_BANDS  # visemes, loudness, voicing, bands
PITCH_RANGE = (60.0, 400.0)  # Hz
SPEAKER_HISTORY_STEPS = 1000  # 10 ms steps (10 s) before a frame whose speech sets the speaker's level
PEAK_REACH_STEPS = 10  # a frame's loudness is the loudest 10 ms step within 0.1 s of it


@dataclass(frozen=True)
class SpeechFeatureConfig:
    block_frames: int = 80  # frames computed together (3.2 s)
    history_frames: int = 25  # frames before a block that its statistics see (1 s)
    phone_history_frames: int = 8  # ... that its phone decoding sees (0.32 s)
    lookahead_frames: int = 10  # frames after a block that both see (0.4 s)

    def blocks(self, total: int) -> Iterator[tuple[int, int]]:
        """(first frame, frames) of each block of a clip of `total` frames."""
        for first in range(0, total, self.block_frames):
            yield first, min(self.block_frames, total - first)

    def statistics_span(self, first: int, frames: int, available: int) -> tuple[int, int]:
        """Frames [lo, hi) of the audio a block's statistics are computed over (`available`: frames there are)."""
        return max(first - self.history_frames, 0), min(first + frames + self.lookahead_frames, available)

    def phone_span(self, first: int, frames: int, available: int) -> tuple[int, int]:
        """Frames [lo, hi) of the audio a block's phones are decoded from."""
        return max(first - self.phone_history_frames, 0), min(first + frames + self.lookahead_frames, available)


def _subframe_db(window: np.ndarray, count: int) -> np.ndarray:
    """(count,) RMS level in dBFS of consecutive 10 ms steps."""
    steps = np.zeros(count * HOP, np.float32)
    steps[: min(len(window), len(steps))] = window[: len(steps)]
    rms = np.sqrt((steps.reshape(count, HOP).astype(np.float64) ** 2).mean(1))
    return 20 * np.log10(rms + 1e-6)


def _voicing(window: np.ndarray, count: int) -> np.ndarray:
    """(count,) peak of the normalised autocorrelation in the pitch lag range, per 10 ms step (25 ms frames)."""
    frame = 400
    padded = np.pad(window.astype(np.float32), (frame // 2, frame // 2 + count * HOP))
    starts = np.arange(count) * HOP + HOP // 2
    frames = np.stack([padded[s : s + frame] for s in starts]) * np.hanning(frame).astype(np.float32)
    spectrum = np.fft.rfft(frames - frames.mean(1, keepdims=True), n=1024)
    correlation = np.fft.irfft(np.abs(spectrum) ** 2, n=1024)[:, :frame]
    lo, hi = int(SAMPLE_RATE / PITCH_RANGE[1]), int(SAMPLE_RATE / PITCH_RANGE[0])
    return np.clip(correlation[:, lo:hi].max(1) / (correlation[:, 0] + 1e-9), 0, 1)


class SpeechFeatureExtractor:
    """waveform (16 kHz) -> (T, 4, 30) features, T = floor(samples / 640)."""

    def __init__(self, config: SpeechFeatureConfig = SpeechFeatureConfig(), phones: PhoneSource = heard_phones_in_window):
        self.config = config
        self.phones = phones
        self.logmel = LogMelExtractor()

    def with_phones(self, phones: PhoneSource) -> SpeechFeatureExtractor:
        """The same features with phones from `phones` (e.g. `KnownPhones` of a transcript)."""
        return SpeechFeatureExtractor(self.config, phones)

    def block(self, waveform: np.ndarray, first: int, frames: int, origin: int = 0) -> torch.Tensor:
        """Features of frames [first, first + frames) of `waveform` (the whole signal or any span that holds the
        block and its context; `origin`: the frame of the clip that `waveform` starts at), (frames, 4,
        FEATURE_DIM)."""
        available = len(waveform) // SAMPLES_PER_FRAME
        lo, hi = self.config.statistics_span(first, frames, available)
        window = waveform[lo * SAMPLES_PER_FRAME : hi * SAMPLES_PER_FRAME].astype(np.float32)
        steps = (hi - lo) * SUBFRAMES
        inside = slice((first - lo) * SUBFRAMES, (first - lo + frames) * SUBFRAMES)

        visemes = np.zeros((steps, len(VISEMES)), np.float32)
        visemes[:, 0] = 1.0  # silence where no phone covers a step
        phones_from = self.config.phone_span(first, frames, available)[0] - lo  # frames into the window
        centres = (np.arange(steps) + 0.5) * HOP / SAMPLE_RATE - phones_from / FPS
        for phone in self.phones(window[phones_from * SAMPLES_PER_FRAME :], (origin + lo + phones_from) / FPS):
            covered = (centres >= phone.start) & (centres < phone.end)
            visemes[covered] = 0.0
            visemes[covered, phone.viseme] = 1.0

        level = _subframe_db(window, steps)
        loudness = np.clip((level - speech_level_db(window)) / 20.0, -3.0, 1.0)

        mel = self.logmel.compute(window).numpy().reshape(steps, -1)  # (steps, 80) log10 power
        bands = mel.reshape(steps, MEL_BANDS, -1).mean(2)
        bands = (bands - bands.mean(0)) / (bands.std(0) + 0.1)

        features = np.concatenate([visemes, loudness[:, None], _voicing(window, steps)[:, None], bands], axis=1)
        return torch.from_numpy(features[inside].reshape(frames, SUBFRAMES, FEATURE_DIM).astype(np.float32))

    def __call__(self, waveform: np.ndarray) -> torch.Tensor:
        total = len(waveform) // SAMPLES_PER_FRAME
        if total == 0:
            raise MoDAError(f"audio is too short ({len(waveform) / SAMPLE_RATE:.3f} s); give at least {1 / FPS} s")
        return torch.cat([self.block(waveform, first, frames) for first, frames in self.config.blocks(total)])

    def phone_windows(self, waveform: np.ndarray) -> Iterator[tuple[np.ndarray, float]]:
        """The (window, its start in seconds) that computing the features of `waveform` asks its `PhoneSource`
        for, block by block, in order (to decode them ahead, `moda.audio.phones.PhonesAhead`)."""
        total = len(waveform) // SAMPLES_PER_FRAME
        for first, frames in self.config.blocks(total):
            lo, hi = self.config.phone_span(first, frames, total)
            yield waveform[lo * SAMPLES_PER_FRAME : hi * SAMPLES_PER_FRAME].astype(np.float32, copy=False), lo / FPS


class StreamingSpeechFeatures:
    """`SpeechFeatureExtractor` on audio that arrives in pieces: the same values, block by block, each as soon
    as its lookahead (0.4 s) has arrived. Only the audio later blocks still read is kept."""

    def __init__(self, extractor: SpeechFeatureExtractor):
        self.extractor = extractor
        self.samples = np.zeros(0, np.float32)
        self.offset = 0  # stream frame index of self.samples[0]
        self.done = 0  # frames returned so far

    def _blocks(self, final: bool) -> torch.Tensor:
        config = self.extractor.config
        available = self.offset + len(self.samples) // SAMPLES_PER_FRAME
        out = []
        while self.done < available:
            frames = min(config.block_frames, available - self.done)
            if not final and (frames < config.block_frames or self.done + frames + config.lookahead_frames > available):
                break
            block = self.extractor.block(self.samples, self.done - self.offset, frames, self.offset)
            out.append(block)
            self.done += frames
            keep_from = max(self.done - config.history_frames - self.offset, 0)
            self.samples, self.offset = self.samples[keep_from * SAMPLES_PER_FRAME :], self.offset + keep_from
        return torch.cat(out) if out else torch.zeros(0, SUBFRAMES, FEATURE_DIM)

    def push(self, samples: np.ndarray) -> torch.Tensor:
        self.samples = np.concatenate([self.samples, np.asarray(samples, np.float32)])
        return self._blocks(final=False)

    def finish(self) -> torch.Tensor:
        return self._blocks(final=True)


class SpeakerRelativeLevel:
    """Per video frame: how loud the speech around it is relative to the speaker's own level, in dB (0: as loud
    as the loud parts of the speaker's speech; -25: another talker far down a telephone line, or a breath).

    The loudness of a frame is the loudest 10 ms step within 0.1 s of it; the speaker's level is
    `speech_level_db`'s (the 95th percentile of 10 ms levels) over the 10 s before the frame and the front-end's
    lookahead after it. Audio arrives by `push`; `frames(first, count)` answers once the lookahead of the last
    frame has arrived (or the audio has ended), so offline and streaming give the same values. Only the 10 ms
    levels still needed are kept."""

    def __init__(self, lookahead_frames: int = SpeechFeatureConfig().lookahead_frames):
        self.lookahead_steps = lookahead_frames * SUBFRAMES
        self.levels = np.zeros(0)  # dBFS of 10 ms steps
        self.offset = 0  # step index of self.levels[0]
        self.pending = np.zeros(0, np.float32)  # samples of an incomplete step

    def push(self, samples: np.ndarray) -> None:
        samples = np.concatenate([self.pending, np.asarray(samples, np.float32)])
        steps = len(samples) // HOP
        self.levels = np.concatenate([self.levels, _subframe_db(samples, steps)])
        self.pending = samples[steps * HOP :]

    def frames(self, first: int, count: int) -> np.ndarray:
        out = np.zeros(count)
        for index in range(count):
            centre = (first + index) * SUBFRAMES + SUBFRAMES // 2 - self.offset
            around = self.levels[max(centre - PEAK_REACH_STEPS, 0) : centre + PEAK_REACH_STEPS]
            history = self.levels[max(centre - SPEAKER_HISTORY_STEPS, 0) : centre + self.lookahead_steps]
            speaker = max(float(np.percentile(history, 95)), SILENCE_FLOOR_DB) if len(history) else SILENCE_FLOOR_DB
            out[index] = (around.max() if len(around) else SILENCE_FLOOR_DB) - speaker
        keep_from = max((first + count) * SUBFRAMES - SPEAKER_HISTORY_STEPS - self.offset, 0)
        self.levels, self.offset = self.levels[keep_from:], self.offset + keep_from
        return out
