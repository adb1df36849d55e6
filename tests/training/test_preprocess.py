import subprocess
import sys

import numpy as np
import pytest
import torch

from moda.audio.logmel import LogMelExtractor
from moda.errors import MoDAError
from moda.renderer.config import LivePortraitConfig
from moda.renderer.liveportrait import LivePortraitRenderer, export_liveportrait
from moda.shards import load_clip
from moda.training.preprocess import read_emotion_labels
from tests.helpers import write_driving_video


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    videos = root / "videos"
    videos.mkdir()
    write_driving_video(videos / "talk.mp4", frames=30)
    write_driving_video(videos / "mute.mp4", frames=10, with_audio=False)
    (videos / "broken.mp4").write_bytes(b"\x00garbage" * 64)
    (videos / "notes.txt").write_text("not a video")
    (root / "labels.csv").write_text("# file,emotion\ntalk.mp4,happy\n")
    torch.manual_seed(0)
    export_liveportrait(LivePortraitRenderer(LivePortraitConfig.tiny()), root / "weights")
    return root


def preprocess(root):
    return subprocess.run([sys.executable, "-m", "moda", "preprocess", "--videos", str(root / "videos"),
                           "--out", str(root / "shards"), "--weights", str(root / "weights"),
                           "--audio-features", "logmel", "--emotions", str(root / "labels.csv"), "--quiet"],
                          capture_output=True, text=True)


def test_videos_become_shards_and_bad_files_are_reported(corpus):
    run = preprocess(corpus)
    assert run.returncode == 0, run.stderr
    assert "1 written, 0 already there, 2 failed" in run.stdout
    assert "skipped mute.mp4" in run.stderr and "no audio stream" in run.stderr and "skipped broken.mp4" in run.stderr
    clip = load_clip(corpus / "shards" / "talk.clip.safetensors")
    assert clip.motion.shape == (30, 70) and clip.audio.shape == (30, 4, 80) and clip.ref_kp.shape == (63,)
    assert clip.emotion == 4 and clip.source == "talk.mp4"  # happy
    assert torch.all(clip.motion[:, 67:].abs() <= 97.5)  # angles in degrees
    # resumable: a second run keeps what is there
    again = preprocess(corpus)
    assert "0 written, 1 already there, 2 failed" in again.stdout


def test_log_mel_features_have_four_mel_frames_per_video_frame():
    t = np.arange(16000) / 16000
    low, high = np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 3000 * t)
    extractor = LogMelExtractor()
    features_low, features_high = extractor(low.astype(np.float32)), extractor(high.astype(np.float32))
    assert features_low.shape == (25, 4, 80)
    assert features_low[10, 0].argmax() < features_high[10, 0].argmax()  # pitch moves up the mel axis
    with pytest.raises(MoDAError, match="too short"):
        extractor(np.zeros(100, dtype=np.float32))


def test_emotion_labels(tmp_path):
    path = tmp_path / "l.csv"
    path.write_text("a.mp4,Sad\nb.mp4,0\n")
    assert read_emotion_labels(path) == {"a.mp4": 6, "b.mp4": 0}
    path.write_text("a.mp4,bored\n")
    with pytest.raises(MoDAError, match="unknown emotion 'bored'.*row for a.mp4"):
        read_emotion_labels(path)


def test_two_ranks_under_torchrun_write_the_same_shards_and_one_merged_report(corpus, tmp_path):
    import json
    import os
    import shutil

    videos = tmp_path / "videos"
    shutil.copytree(corpus / "videos", videos)
    write_driving_video(videos / "again.mp4", frames=20)
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1"}  # torchrun's per-worker default, for bitwise equality

    def run(out, processes, folder=videos):
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                    if processes > 1 else [sys.executable])
        return subprocess.run([*launcher, "-m", "moda", "preprocess", "--videos", str(folder), "--out", str(out),
                               "--weights", str(corpus / "weights"), "--audio-features", "logmel", "--quiet"],
                              capture_output=True, text=True, env=one_thread)

    single, double = run(tmp_path / "one", 1), run(tmp_path / "two", 2)
    assert single.returncode == 0 and double.returncode == 0, double.stderr[-3000:]
    assert double.stdout.count("2 written, 0 already there, 2 failed") == 1  # rank 0 reports for both
    report = json.loads((tmp_path / "two" / "preprocess_report.json").read_text())
    assert report["written"] == ["again.clip.safetensors", "talk.clip.safetensors"]
    assert sorted(report["failed"]) == ["broken.mp4", "mute.mp4"] and "no audio stream" in report["failed"]["mute.mp4"]
    assert report == json.loads((tmp_path / "one" / "preprocess_report.json").read_text())
    for shard in ("again", "talk"):
        a, b = (load_clip(tmp_path / out / f"{shard}.clip.safetensors") for out in ("one", "two"))
        assert torch.equal(a.motion, b.motion) and torch.equal(a.audio, b.audio) and torch.equal(a.ref_kp, b.ref_kp)
    # a run killed after its first shard resumes: the rerun (same world size) does only what is missing; more
    # videos than the two, so that the run is still going when the first shard appears
    import signal
    import time

    many = tmp_path / "many"
    shutil.copytree(videos, many)
    for copy in range(6):
        shutil.copy(videos / "again.mp4", many / f"again{copy}.mp4")
    process = subprocess.Popen([sys.executable, "-m", "moda", "preprocess", "--videos", str(many), "--out",
                                str(tmp_path / "killed"), "--weights", str(corpus / "weights"), "--audio-features",
                                "logmel", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=one_thread)
    deadline = time.time() + 120
    while not list((tmp_path / "killed").glob("*.clip.safetensors")) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143
    assert not list((tmp_path / "killed").glob(".*partial"))  # shards appear whole or not at all
    done = len(list((tmp_path / "killed").glob("*.clip.safetensors")))
    assert done < 8
    resumed = run(tmp_path / "killed", 1, many)
    assert f"{8 - done} written, {done} already there, 2 failed" in resumed.stdout, resumed.stdout
    for shard in ("again", "talk"):
        a, b = (load_clip(tmp_path / out / f"{shard}.clip.safetensors") for out in ("one", "killed"))
        assert torch.equal(a.motion, b.motion) and torch.equal(a.audio, b.audio)
