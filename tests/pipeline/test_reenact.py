import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from PIL import Image

from moda.renderer.config import LivePortraitConfig
from moda.renderer.liveportrait import LivePortraitRenderer, export_liveportrait
from tests.helpers import portrait, write_blank_video, write_driving_video


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("reenact")
    Image.fromarray(portrait()[:, :500]).save(root / "source.png")  # 512 x 500
    write_driving_video(root / "driving.mp4", frames=12)
    torch.manual_seed(0)
    export_liveportrait(LivePortraitRenderer(LivePortraitConfig.tiny()), root / "weights")
    return root


def moda(*args):
    return subprocess.run([sys.executable, "-m", "moda", *args], capture_output=True, text=True)


def test_reenact_end_to_end_with_small_random_weights(assets):
    out = assets / "out.mp4"
    run = moda("reenact", "--source", str(assets / "source.png"), "--driving", str(assets / "driving.mp4"),
               "--out", str(out), "--weights", str(assets / "weights"), "--quiet", "--device", "cpu")
    assert run.returncode == 0, run.stderr
    with av.open(str(out)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video)]
        assert audio.codec_context.name == "aac"
    assert len(frames) == 12 and frames[0].shape == (512, 500, 3)
    source = portrait()[:, :500].astype(int)
    # outside the pasted face region the portrait is unchanged (up to H.264); inside, the renderer drew
    corner = np.abs(frames[0][-60:, :60].astype(int) - source[-60:, :60]).mean()
    face = np.abs(frames[0][100:200, 180:280].astype(int) - source[100:200, 180:280]).mean()
    assert corner < 6 and face > 20
    assert not list(assets.glob(".out*"))  # no temporary file left


def test_existing_output_is_refused_and_kept(assets):
    out = assets / "exists.mp4"
    out.write_bytes(b"keep me")
    run = moda("reenact", "--source", str(assets / "source.png"), "--driving", str(assets / "driving.mp4"),
               "--out", str(out), "--weights", str(assets / "weights"))
    assert run.returncode == 2 and "--overwrite" in run.stderr and run.stderr.count("\n") == 1
    assert out.read_bytes() == b"keep me"


def test_driving_video_without_a_face_fails_cleanly(assets):
    blank = write_blank_video(assets / "blank.mp4", size=128)
    out = assets / "never.mp4"
    run = moda("reenact", "--source", str(assets / "source.png"), "--driving", str(blank), "--out", str(out),
               "--weights", str(assets / "weights"))
    assert run.returncode == 2 and "no face found in any frame" in run.stderr
    assert not out.exists() and not list(assets.glob(".never*"))
