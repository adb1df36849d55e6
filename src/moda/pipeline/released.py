"""The released models behind `Pipeline.from_weights`: HuBERT features, MoDA's generator, LivePortrait.

Weights folder layout (what `moda download` writes):
    moda/net-200.pth            the generator checkpoint (flat state dict)
    moda/mean.pt                motion statistics (dict with mean and std, each (1, 70))
    chinese-hubert-base/        HuBERT (config.json + weights), TencentGameMate/chinese-hubert-base
    liveportrait/               base_models/ and retargeting_models/ from KwaiVGI/LivePortrait
A `moda/generator.json` ({"model": DiTConfig fields}) selects a non-released generator width.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.features import AudioFeatureExtractor, prepare_speech, silent_tail_frames
from ..audio.hubert import HubertFrameEncoder
from ..devices import default_device
from ..errors import MoDAError
from ..face.landmarks import FaceMeshDetector
from ..generator.chaining import ChainingConfig, generate_motion
from ..generator.checkpoint import load_motion_generator, read_generator_config
from ..generator.config import MODA_BASE
from ..generator.model import MotionGenerator
from ..motion.postprocess import modulate_lip, silent_reference_index, source_prev_motion, split_motion
from ..motion.stats import MotionStats
from ..renderer.driving import driving_keypoints
from ..renderer.liveportrait import LivePortraitRenderer, to_uint8
from ..timebase import SAMPLES_PER_FRAME
from .backend import Capabilities, MotionRequest, WindowCallback
from .portrait import PreparedSource, prepare_source

RENDER_BATCH = 8


@dataclass(frozen=True)
class ReleasedSubject:
    """A portrait prepared for the released models: the renderer's source, and the generator's view of it."""

    source: PreparedSource
    prev_motion: torch.Tensor  # (1, 1, 70) normalised motion prompt
    rescale_ratio: torch.Tensor  # (1, 1) the face's size relative to the dataset's mean face


class ReleasedBackend:
    capabilities = Capabilities(streams=False, emotions=True)
    default_guidance = 1.2  # the released inference script's scale

    def __init__(self, generator: MotionGenerator, stats: MotionStats, audio: AudioFeatureExtractor,
                 renderer: LivePortraitRenderer, chaining: ChainingConfig = ChainingConfig()):
        self.generator, self.stats, self.audio, self.renderer = generator, stats, audio, renderer
        self.chaining = chaining

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | None = None) -> ReleasedBackend:
        folder = Path(folder)
        needed = [folder / "moda" / "net-200.pth", folder / "moda" / "mean.pt", folder / "chinese-hubert-base",
                  folder / "liveportrait"]
        missing = [str(p) for p in needed if not p.exists()]
        if missing:
            raise MoDAError(f"weights folder incomplete, missing {', '.join(missing)}; run `moda download --out {folder}`")
        config_file = folder / "moda" / "generator.json"
        config = read_generator_config(config_file) if config_file.is_file() else MODA_BASE
        target = default_device(device)
        generator = load_motion_generator(folder / "moda" / "net-200.pth", config).to(target)
        encoder = HubertFrameEncoder.from_pretrained(folder / "chinese-hubert-base").to(target)
        renderer = LivePortraitRenderer.from_pretrained(folder / "liveportrait").to(target)
        return cls(generator, MotionStats.load(folder / "moda" / "mean.pt"), AudioFeatureExtractor(encoder), renderer)

    def prepare(self, image: np.ndarray, name: str) -> ReleasedSubject:
        with FaceMeshDetector() as detector:
            source = prepare_source(image, name, self.renderer, detector)
        prev_motion, ratio = source_prev_motion(source.info, self.stats)
        return ReleasedSubject(source, prev_motion, ratio)

    def num_windows(self, num_samples: int) -> int:
        return self.chaining.num_windows(num_samples // SAMPLES_PER_FRAME + silent_tail_frames())

    def motion(self, subject: ReleasedSubject, waveform: np.ndarray, request: MotionRequest,
               on_window: WindowCallback | None = None) -> np.ndarray:
        """Normalised motion per video frame: generated with a 2 s silent tail that anchors the lip
        modulation, then trimmed (as the released pipeline does)."""
        speech = prepare_speech(waveform)
        features = self.audio(speech.waveform)
        normalized = generate_motion(self.generator, features, subject.source.info.kp.reshape(1, -1),
                                     subject.prev_motion, request.emotion, request.guidance, request.rng,
                                     self.chaining, on_window)
        lip = modulate_lip(normalized, silent_reference_index(normalized.shape[0], speech.silent_frames))
        return lip.motion[: normalized.shape[0] - speech.silent_frames].numpy()

    def frames(self, subject: ReleasedSubject, motion: np.ndarray) -> Iterator[np.ndarray]:
        source = subject.source
        driving = split_motion(torch.from_numpy(motion), self.stats, subject.rescale_ratio)
        for start in range(0, motion.shape[0], RENDER_BATCH):
            with torch.no_grad():
                keypoints = driving_keypoints(source.info, driving[start : start + RENDER_BATCH], self.renderer.stitching)
            for rendered in to_uint8(self.renderer.render(source.features, keypoints.x_s, keypoints.x_d)):
                yield source.paste(rendered)

    def stream(self, subject: ReleasedSubject, chunks: Iterable[np.ndarray],
               request: MotionRequest) -> Iterator[np.ndarray]:
        raise MoDAError("the released models do not stream (capabilities.streams is False)")


def download_released(folder: str | Path, moda_repo: str) -> Path:
    """Fetch everything `Pipeline.from_weights` needs into `folder` (offline: an error naming each file's place).

    The MoDA authors' hub repository and file paths are not documented in the fixtures we build from;
    `moda_repo` is expected to hold `net-200.pth` and `mean.pt` at its root.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    from ..audio.hubert import HUBERT_HUB_ID
    from ..renderer.loading import download_liveportrait
    from ..weights import hub_download

    folder = Path(folder)
    for name in ("net-200.pth", "mean.pt"):
        hub_download(moda_repo, name, folder / "moda")
    try:
        snapshot_download(HUBERT_HUB_ID, local_dir=str(folder / "chinese-hubert-base"))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise MoDAError(f"could not download {HUBERT_HUB_ID} ({type(exc).__name__}); when offline, copy it to "
                        f"{folder / 'chinese-hubert-base'}") from exc
    download_liveportrait(folder)
    return folder
