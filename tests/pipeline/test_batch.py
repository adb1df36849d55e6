"""`moda generate --manifest`: one model load for many videos, resumable, split across ranks by torchrun."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from moda.errors import MoDAError
from moda.media.audio import load_audio
from moda.pipeline.batch import read_manifest
from moda.pipeline.generate import GenerateOptions
from moda.samples import sample_path

# torchrun gives each of several workers one thread; single-process references use the same, so that the
# floating-point sums, and with them the videos, are the same bit for bit
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def run_manifest(manifest, out_dir, processes=1, **kwargs):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
                if processes > 1 else [sys.executable])
    return subprocess.run([*launcher, "-m", "moda", "generate", "--manifest", str(manifest), "--out-dir", str(out_dir),
                           "--quiet"], capture_output=True, text=True, env=ONE_THREAD, **kwargs)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jobs")
    speech = load_audio(sample_path("speech.wav"))
    soundfile.write(folder / "short.wav", speech[:16000], 16000)
    soundfile.write(folder / "other.wav", speech[16000:36000], 16000)
    (folder / "jobs.csv").write_text(
        "image,audio,out,emotion,seed,cfg_audio\n"
        f"{sample_path('portrait.jpg')},short.wav,a.mp4,,1,\n"
        f"{sample_path('portrait.jpg')},other.wav,,,2,2.0\n"
        "missing.jpg,short.wav,c.mp4,,,\n"
        f"{sample_path('portrait.jpg')},short.wav,d.mp4,,seven,\n"
        f"{sample_path('portrait.jpg')},other.wav,e.mp4,,3,\n")
    return folder / "jobs.csv"


@pytest.fixture(scope="module")
def single(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    run = run_manifest(manifest, out)
    return run, out


def test_rows_become_videos_and_bad_rows_are_reported_not_fatal(single):
    run, out = single
    assert run.returncode == 1, run.stderr  # some rows failed: a non-zero exit, after every other row ran
    assert "3 written, 0 already there, 2 failed" in run.stdout
    report = json.loads((out / "manifest_report.json").read_text())
    assert report["written"] == ["a.mp4", "e.mp4", "row-2_portrait_other.mp4"]
    assert "image not found" in report["failed"]["row 3 (c.mp4)"]
    assert report["failed"]["row 4 (d.mp4)"] == "seed 'seven' is not an integer"
    assert sorted(p.name for p in out.glob("*.mp4")) == report["written"]


def test_two_ranks_under_torchrun_write_the_same_videos_bit_for_bit(manifest, single, tmp_path):
    run = run_manifest(manifest, tmp_path, processes=2)
    assert run.returncode == 1, run.stderr[-3000:]
    assert run.stdout.count("3 written, 0 already there, 2 failed") == 1  # rank 0 reports for both
    assert (tmp_path / "manifest_report.json").read_text() == (single[1] / "manifest_report.json").read_text()
    for video in single[1].glob("*.mp4"):
        assert (tmp_path / video.name).read_bytes() == video.read_bytes(), video.name


def test_a_killed_run_resumes_with_the_rows_it_had_not_finished(manifest, single, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "moda", "generate", "--manifest", str(manifest), "--out-dir",
                                str(tmp_path), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=ONE_THREAD)
    deadline = time.time() + 120
    while not (tmp_path / "a.mp4").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143 and (tmp_path / "a.mp4").exists()
    assert not list(tmp_path.glob(".moda-*"))  # the row in progress left nothing behind
    resumed = run_manifest(manifest, tmp_path)
    report = json.loads((tmp_path / "manifest_report.json").read_text())
    assert "a.mp4" in report["skipped"] and len(report["skipped"]) + len(report["written"]) == 3, resumed.stdout
    for video in single[1].glob("*.mp4"):
        assert (tmp_path / video.name).read_bytes() == video.read_bytes(), video.name


def test_manifest_errors_are_one_line_before_any_model_loads(tmp_path):
    (tmp_path / "bad.csv").write_text("picture,audio\nx.jpg,y.wav\n")
    with pytest.raises(MoDAError, match="missing image"):
        read_manifest(tmp_path / "bad.csv", tmp_path)
    (tmp_path / "dup.csv").write_text("image,audio,out\nx.jpg,y.wav,o.mp4\nz.jpg,y.wav,o.mp4\nx.jpg,y.wav,../o.mp4\n")
    rows = read_manifest(tmp_path / "dup.csv", tmp_path)
    assert rows[0].error is None and rows[1].error == "out o.mp4 is also row 1's"
    assert "must be a file name" in str(rows[2].error)
    defaults = GenerateOptions(emotion="sad", seed=5, cfg_audio=2.0)  # the command line's, for empty cells
    (tmp_path / "some.csv").write_text("image,audio,seed\nx.jpg,y.wav,\nx.jpg,z.wav,7\n")
    first, second = read_manifest(tmp_path / "some.csv", tmp_path, defaults)
    assert first.options == defaults and second.options == GenerateOptions("sad", 2.0, None, 7)
    run = subprocess.run([sys.executable, "-m", "moda", "generate", "--manifest", str(tmp_path / "bad.csv"),
                          "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "missing image" in run.stderr
    run = subprocess.run([sys.executable, "-m", "moda", "generate", "--manifest", str(tmp_path / "dup.csv")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "--manifest and --out-dir go together" in run.stderr
    assert np.all([not p.name.endswith(".mp4") for p in tmp_path.iterdir()])


def test_a_manifest_row_takes_its_words_in_a_text_column(tmp_path):
    from moda.pipeline.batch import read_manifest

    (tmp_path / "jobs.csv").write_text("image,audio,text\na.jpg,a.wav,go forward ten meters\nb.jpg,b.wav,\n"
                                       "c.jpg,c.wav,go 10 meters\n")
    rows = read_manifest(tmp_path / "jobs.csv", tmp_path / "out")
    assert [row.options.transcript for row in rows[:2]] == ["go forward ten meters", None]
    assert rows[0].error is None and "does not know: 10" in rows[2].error
