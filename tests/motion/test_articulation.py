import numpy as np

from moda.motion.articulation import ArticulationConfig, ArticulationCues, articulate, target_opening
from moda.motion.landmark_space import INNER_GAP_PER_OPENING, mouth_opening, opening_offsets
from moda.motion.vector import EXPRESSION, MOTION_DIM


def cues(frames: int, bilabial=0.0, level_db=0.0) -> ArticulationCues:
    return ArticulationCues(np.full(frames, bilabial), np.full(frames, level_db))


def motion_opened(openings: list[float]) -> np.ndarray:
    """(T, 70) motion whose mouth opens by `openings` and whose brows and head also move."""
    motion = np.zeros((len(openings), MOTION_DIM), np.float32)
    exp = opening_offsets(np.array(openings, np.float32))
    exp[:, 1, 1] = -0.05  # a brow
    motion[:, EXPRESSION] = exp.reshape(len(openings), -1)
    motion[:, -3:] = [3.0, -5.0, 1.0]
    return motion


def test_a_bilabial_closes_the_lips_and_leaves_the_rest_of_the_face():
    motion = motion_opened([0.6, 0.6, 0.6])
    heard = ArticulationCues(np.array([0.0, 1.0, 0.0]), np.zeros(3))
    out = articulate(motion, heard)
    np.testing.assert_allclose(mouth_opening(out) / INNER_GAP_PER_OPENING, [0.6, 0.0, 0.6], atol=1e-6)
    untouched = [i for i in range(MOTION_DIM) if not np.allclose(out[:, i], motion[:, i])]
    moved_rows = {i // 3 for i in untouched}
    assert moved_rows <= {5, 6, 8, 9, 12, 14, 17, 19, 20}  # lips, mouth corners, chin and jaw only
    np.testing.assert_array_equal(out[:, -3:], motion[:, -3:])


def test_quiet_speech_is_articulated_less_and_pressed_lips_stay_pressed():
    config = ArticulationConfig()
    loud = target_opening(np.array([0.8]), cues(1, level_db=-config.quiet_knee_db))
    quieter = target_opening(np.array([0.8]), cues(1, level_db=-config.quiet_knee_db - config.quiet_span_db / 2))
    far = target_opening(np.array([0.8]), cues(1, level_db=-60.0))
    np.testing.assert_allclose([loud[0], quieter[0], far[0]], [0.8, 0.6, 0.8 * config.quiet_floor])
    assert target_opening(np.array([-0.05]), cues(1, level_db=-40.0))[0] == -0.05
