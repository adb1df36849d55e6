"""What the speech says the lips must do, applied to generated landmark motion (the default mode).

The tiny generator learns mouth shapes from synthetic speech; on real speech it follows the recognised phones
only loosely (measured on ../shared/real: lips still apart on about a third of the frames recognised as M / B /
P, and the mouth moving as much for speech 25 dB below the speaker's level, such as another talker heard on a
telephone line, as for the speaker's own). Two rules that hold for any speaker, in any language, act on the
generated mouth opening (`MOUTH_OPENING` units, 0: lips together):

- lips meet on a bilabial: a frame heard as M / B / P at its centre closes;
- quiet speech is articulated less: speech more than `quiet_knee_db` below the speaker's level opens less,
  down to `quiet_floor` of its opening `quiet_span_db` further down.
Everything else (timing, co-articulation, the other keypoints, the head) is the generator's. A third rule, open
vowels opening the jaw to at least half a unit, was measured and left out: on real speech it raised d (mean over
the six clips 3.85 -> 4.05) but lowered the espeak sample's envelope r from 0.50 to 0.46.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .landmark_space import INNER_GAP_PER_OPENING, mouth_opening, opening_offsets
from .vector import EXPRESSION, NUM_KEYPOINTS


@dataclass(frozen=True)
class ArticulationConfig:
    quiet_knee_db: float = 12.0
    quiet_span_db: float = 7.5
    quiet_floor: float = 0.5


@dataclass(frozen=True)
class ArticulationCues:
    """Per video frame, from the speech."""

    bilabial: np.ndarray  # (T,) 1 where the speech at the frame's centre is recognised as M / B / P, else 0
    level_db: np.ndarray  # (T,) loudness around the frame relative to the speaker's level (0: as loud; < 0: quieter)


def target_opening(opening: np.ndarray, cues: ArticulationCues,
                   config: ArticulationConfig = ArticulationConfig()) -> np.ndarray:
    """(T,) the generated opening with the rules applied (lips pressed together, a negative opening, stay so)."""
    closed = 1.0 - cues.bilabial
    below = np.clip((-cues.level_db - config.quiet_knee_db) / config.quiet_span_db, 0.0, 1.0)
    quiet = 1.0 - (1.0 - config.quiet_floor) * below
    return np.where(opening > 0, opening * quiet * closed, opening)


def articulate(motion: np.ndarray, cues: ArticulationCues, config: ArticulationConfig = ArticulationConfig()) -> np.ndarray:
    """(T, 70) de-normalised landmark motion with the mouth moved to `target_opening` (lips and jaw together, as
    `MOUTH_OPENING` moves them)."""
    opening = mouth_opening(motion) / INNER_GAP_PER_OPENING
    change = target_opening(opening, cues, config) - opening
    out = motion.copy()
    out[:, EXPRESSION] += opening_offsets(change).reshape(len(motion), NUM_KEYPOINTS * 3)
    return out
