import json
import subprocess
import sys

import numpy as np
import pytest

from moda.evaluation.score import MouthTrack, cohens_d, score_tracks
from moda.media.audio import load_audio
from moda.media.video import Mp4Writer
from tests.helpers import SHARED, write_blank_video


def moda(*args):
    return subprocess.run([sys.executable, "-m", "moda", *args], capture_output=True, text=True)


def errors(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if line.startswith("moda: error:")]


@pytest.fixture(scope="module")
def numbers():
    return load_audio(SHARED / "real" / "speech" / "numbers.wav")


def _track(opening: np.ndarray) -> MouthTrack:
    stable = np.zeros((len(opening), 30, 2))
    return MouthTrack(opening, stable, len(opening))


def test_a_mouth_that_follows_the_phones_scores_high_and_a_still_one_low():
    from moda.audio.phones import BILABIALS, OPEN_VOWELS, phone_track, recognize_phones

    speech = load_audio(SHARED / "real" / "speech" / "something.wav")  # "go somewhere and do something"
    frames = len(speech) // 640
    labels = phone_track(recognize_phones(speech), frames)
    articulated = np.array([0.3 if p in OPEN_VOWELS else 0.0 if p in BILABIALS or p == "SIL" else 0.12 for p in labels])
    noise = np.random.default_rng(0).uniform(0, 0.01, frames)
    good = score_tracks(_track(articulated + noise), speech)
    assert good.bilabial_frames >= 3  # the M of "somewhere" and of "something"
    assert good.vowel_bilabial_d > 2.5 and good.open_vowel_open_share > 0.7 and good.bilabial_closed_share > 0.5
    assert good.envelope_corr > 0.3
    assert "rough figure" in good.summary()  # d from the few M / B / P frames of a 3 s clip
    still = score_tracks(_track(np.full(frames, 0.01)), speech)
    assert still.open_vowel_open_share == 0 and np.isnan(still.vowel_bilabial_d)
    assert "n/a (the opening does not vary" in still.summary()
    assert still.identity_drift == 0 and still.jitter == 0


def test_cohens_d_by_hand():
    assert cohens_d(np.array([2.0, 4.0]), np.array([0.0, 2.0])) == pytest.approx(2 / np.sqrt(2))


def test_score_command_on_a_video_without_a_face_or_without_sound(tmp_path, numbers):
    silent = write_blank_video(tmp_path / "silent.mp4")
    run = moda("score", str(silent))
    assert run.returncode == 2 and errors(run) == [errors(run)[0]] and "no usable sound track" in errors(run)[0]
    with Mp4Writer(tmp_path / "wall.mp4", 25, 64, 64, 16000) as writer:
        for _ in range(25):
            writer.write(np.full((64, 64, 3), 90, np.uint8))
        writer.write_audio(numbers[:16000])
    run = moda("score", str(tmp_path / "wall.mp4"))
    assert run.returncode == 2 and len(errors(run)) == 1 and "no face found in any frame" in errors(run)[0]


def test_score_command_prints_json_and_plots(tmp_path):
    from tests.helpers import write_driving_video

    video = write_driving_video(tmp_path / "talk.mp4", frames=40)
    run = moda("score", str(video), "--audio", str(SHARED / "real" / "speech" / "goforward.wav"), "--json",
               "--plot", str(tmp_path / "plot.png"))
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout)
    assert figures["frames"] == 40 and figures["faces_found"] == 40
    assert 0 <= figures["identity_drift"] < 0.2 and figures["jitter"] >= 0
    assert (tmp_path / "plot.png").stat().st_size > 10_000


def test_a_transcript_gives_the_phones_that_were_said():
    """cards005 is "eight of spades four of clubs seven of hearts": the aligned phones put M / B / P only at the
    /p/ of spades and the /b/ of clubs, and so does recognition, which decodes the words (all-phone decoding
    also heard them at a /t/, an /n/ and a /v/)."""
    from moda.audio.phones import BILABIALS, phone_track, recognize_phones

    cards = load_audio(SHARED / "real" / "speech" / "cards005.wav")
    frames = len(cards) // 640
    said = _aligned(cards)
    aligned = phone_track(said, frames)
    recognised = phone_track(recognize_phones(cards), frames)
    bilabial_runs = lambda labels: [labels[i] for i in range(frames)  # noqa: E731
                                    if labels[i] in BILABIALS and (i == 0 or labels[i - 1] != labels[i])]
    assert bilabial_runs(aligned) == bilabial_runs(recognised) == ["P", "B"]
    # a mouth closed exactly on the said bilabials and open on the said vowels scores so against the transcript
    opening = np.array([0.0 if p in BILABIALS or p == "SIL" else 0.25 for p in aligned])
    by_text = score_tracks(_track(opening), cards, said)
    assert by_text.phones_from == "transcript" and by_text.bilabial_closed_share == 1.0
    assert score_tracks(_track(opening), cards).phones_from == "recognition"
    no_bilabials = score_tracks(_track(opening), cards, [p for p in said if p.label not in BILABIALS]).summary()
    assert "(d)       n/a (needs 2" in no_bilabials and "closed            n/a (none heard)" in no_bilabials


def _aligned(cards):
    from moda.audio.phones import align_phones

    return align_phones(cards, "Eight of spades, four of clubs, seven of hearts.")


def test_score_command_takes_a_transcript_and_refuses_one_it_cannot_use(tmp_path):
    from tests.helpers import write_driving_video

    video = write_driving_video(tmp_path / "talk.mp4", frames=40)
    speech = str(SHARED / "real" / "speech" / "goforward.wav")
    run = moda("score", str(video), "--audio", speech, "--text", "go forward ten meters", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["phones_from"] == "transcript"
    (tmp_path / "said.txt").write_text("Go forward 10 meters.\n")
    for extra, message in ((["--text-file", str(tmp_path / "said.txt")], "does not know: 10"),
                           (["--text-file", str(tmp_path / "missing.txt")], "cannot read the transcript"),
                           (["--text", "!!"], "has no words to align"),
                           (["--text", "the quick brown fox jumps over the lazy dog again and again and again"],
                            "could not be aligned")):
        run = moda("score", str(video), "--audio", speech, *extra)
        assert run.returncode == 2 and len(errors(run)) == 1 and message in errors(run)[0], (extra, run.stderr)
