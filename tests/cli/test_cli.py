import signal
import subprocess
import sys
import time

import numpy as np
import pytest


def moda(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "moda", *args], capture_output=True, text=True, cwd=cwd)


def test_golden_check_passes_on_the_shared_fixtures(golden):
    run = moda("golden-check", str(golden))
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert lines[-1] == "6 passed, 0 failed"
    assert all(line.startswith("PASS ") for line in lines[:-1]) and len(lines) == 7


def test_golden_check_fails_on_a_bad_fixture(golden, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    for name in ("sampler_small.json", "sampler_small.safetensors", "dit_small.json", "dit_small.safetensors",
                 "dit_small_io.safetensors"):
        shutil.copy(golden / name, tmp_path / name)
    tensors = load_file(tmp_path / "sampler_small.safetensors")
    tensors["emo4_cfg1.0.output"] = tensors["emo4_cfg1.0.output"] * 1.01
    save_file(tensors, tmp_path / "sampler_small.safetensors")
    run = moda("golden-check", str(tmp_path))
    assert run.returncode == 1
    assert "PASS dit_small" in run.stdout
    assert "FAIL sampler_small" in run.stdout and "emo4_cfg1.0.output" in run.stdout
    assert run.stdout.strip().endswith("1 passed, 1 failed")


def test_incomplete_fixture_is_reported_not_a_crash(golden, tmp_path):
    import shutil

    shutil.copy(golden / "dit_small.json", tmp_path / "dit_small.json")  # weights and io files missing
    run = moda("golden-check", str(tmp_path))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "FAIL dit_small" in run.stdout and "dit_small.safetensors" in run.stdout


def test_missing_directory_is_a_one_line_error(tmp_path):
    run = moda("golden-check", str(tmp_path / "nope"))
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "fixture directory not found" in run.stderr
    empty = moda("golden-check", str(tmp_path))
    assert empty.returncode == 2 and "no golden fixtures" in empty.stderr


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)])
def test_a_signal_mid_run_leaves_no_file_and_exits_cleanly(tmp_path, signum, code):
    import soundfile

    from moda.media.audio import load_audio
    from moda.samples import sample_path

    speech = load_audio(sample_path("speech.wav"))
    soundfile.write(tmp_path / "long.wav", np.tile(speech, 6), 16000)
    process = subprocess.Popen([sys.executable, "-m", "moda", "generate", "--image", str(sample_path("portrait.jpg")),
                                "--audio", str(tmp_path / "long.wav"), "--out", str(tmp_path / "out.mp4")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob(".moda-*")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)  # wait until the video is being written
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code and "nothing was written" in stderr
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".moda-*"))


def test_third_party_logging_is_quiet_unless_verbose(tmp_path):
    """MediaPipe / TFLite write to stderr from C++; by default a failing run prints its one error line only."""
    from moda.samples import sample_path
    from tests.helpers import write_blank_video

    video = write_blank_video(tmp_path / "blank.mp4", size=128)
    quiet = moda("score", str(video), "--audio", str(sample_path("speech.wav")))
    assert quiet.returncode == 2 and quiet.stderr.splitlines() == [
        f"moda: error: no face found in any frame of {video}; moda score needs a talking face"], quiet.stderr
    verbose = moda("score", str(video), "--audio", str(sample_path("speech.wav")), "--verbose")
    assert verbose.returncode == 2 and len(verbose.stderr.splitlines()) > 1  # the native log lines are there


def test_warnings_are_one_line(tmp_path):
    from PIL import Image

    from moda.samples import sample_portrait
    from tests.helpers import write_blank_video

    portrait = Image.fromarray(sample_portrait())
    pair = Image.new("RGB", (portrait.width * 2, portrait.height))
    pair.paste(portrait, (0, 0))
    pair.paste(portrait.resize((portrait.width * 3 // 4, portrait.height * 3 // 4)), (portrait.width, 0))
    pair.save(tmp_path / "pair.png")
    driving = write_blank_video(tmp_path / "faceless.mp4", size=128)
    run = moda("reenact", "--source", str(tmp_path / "pair.png"), "--driving", str(driving), "--out",
               str(tmp_path / "o.mp4"), "--quiet")
    assert run.returncode == 2 and run.stderr.splitlines() == [
        "moda: warning: 2 faces found in " + str(tmp_path / "pair.png") + "; animating the largest",
        f"moda: error: no face found in any frame of {driving}; give a driving video of a face"], run.stderr
