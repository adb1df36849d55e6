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
    assert not list(assets.glob(".moda-*"))  # no temporary file left


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
    assert not out.exists() and not list(assets.glob(".moda-*"))


def test_lip_and_eye_ratios_retarget_the_rendered_face(assets):
    """--lip-ratio / --eye-ratio drive the retargeting networks; the video changes, inside the face only."""
    videos = {}
    for name, extra in (("plain", []), ("retargeted", ["--lip-ratio", "0.45", "--eye-ratio", "0.05"])):
        out = assets / f"{name}.mp4"
        run = moda("reenact", "--source", str(assets / "source.png"), "--driving", str(assets / "driving.mp4"),
                   "--out", str(out), "--weights", str(assets / "weights"), "--quiet", *extra)
        assert run.returncode == 0, run.stderr
        with av.open(str(out)) as container:
            videos[name] = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(int)
    difference = np.abs(videos["plain"] - videos["retargeted"])
    face, background = difference[:, 100:200, 180:280].mean(), difference[:, -60:, :60].mean()
    assert face > 1 and face > 5 * background, (face, background)  # only the face is re-rendered differently


def test_retargeting_offsets_are_the_retargeting_networks_outputs(assets):
    from moda.face.landmarks import FaceMeshDetector
    from moda.pipeline.portrait import prepare_source
    from moda.pipeline.reenact import Retargeting, retargeting_offsets
    from moda.renderer.stitching import retarget_eyes, retarget_lip

    renderer = LivePortraitRenderer.from_pretrained(assets / "weights")
    with FaceMeshDetector() as detector:
        source = prepare_source(portrait(), "portrait", renderer, detector)
    nets = renderer.retargeting_networks()
    with torch.no_grad():
        lip = retarget_lip(nets["lip"], source.x_s, torch.tensor([[source.face.lip_ratio(), 0.45]]))
        left, right = source.face.eye_ratios()
        eyes = retarget_eyes(nets["eye"], source.x_s, torch.tensor([[left, right, 0.05]]))
    offsets = retargeting_offsets(renderer, source, Retargeting(lip_ratio=0.45))
    torch.testing.assert_close(offsets, lip)
    offsets = retargeting_offsets(renderer, source, Retargeting(normalize_lip=False, lip_ratio=0.45, eye_ratio=0.05))
    torch.testing.assert_close(offsets, lip + eyes)


def test_an_out_of_range_ratio_is_a_one_line_error(assets):
    run = moda("reenact", "--source", str(assets / "source.png"), "--driving", str(assets / "driving.mp4"),
               "--out", str(assets / "bad.mp4"), "--weights", str(assets / "weights"), "--lip-ratio", "3")
    assert run.returncode == 2 and "--lip-ratio 3.0 is out of range" in run.stderr and run.stderr.count("\n") == 1


def test_reenact_without_weights_runs_offline_in_the_default_mode(assets, tmp_path):
    import os

    out = tmp_path / "default.mp4"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)}  # no cache, no hub
    run = subprocess.run([sys.executable, "-m", "moda", "reenact", "--source", str(assets / "source.png"), "--driving",
                          str(assets / "driving.mp4"), "--out", str(out), "--quiet"], capture_output=True, text=True,
                         env=env)
    assert run.returncode == 0, run.stderr
    with av.open(str(out)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(int)
        assert container.streams.audio[0].codec_context.name == "aac"
    assert frames.shape == (12, 512, 500, 3)
    motion = np.abs(np.diff(frames, axis=0)).mean(axis=(0, 3))
    assert motion[100:260, 150:350].mean() > 2 * motion[-60:, :60].mean() + 0.2  # the head moves, the corner not


def test_liveportrait_options_without_weights_are_refused(assets, tmp_path):
    run = moda("reenact", "--source", str(assets / "source.png"), "--driving", str(assets / "driving.mp4"),
               "--out", str(tmp_path / "x.mp4"), "--lip-ratio", "0.3")
    assert run.returncode == 2 and "--lip-ratio need LivePortrait" in run.stderr and not (tmp_path / "x.mp4").exists()
