import subprocess
import sys
import threading

import av
import numpy as np
import pytest
import soundfile
from PIL import Image

from moda.face.landmarks import FaceMeshDetector
from moda.media.audio import load_audio
from moda.samples import sample_path, sample_portrait


def moda(*args, timeout=300):
    """`moda ...` in a subprocess; a run that hangs (as NaN motion once made cv2.remap do) fails the test."""
    return subprocess.run([sys.executable, "-m", "moda", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generate") / "talk.mp4"
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(sample_path("speech.wav")),
               "--out", str(out), "--quiet")
    assert run.returncode == 0, run.stderr
    return out


def test_default_mode_writes_a_playable_mp4_with_sound(generated):
    speech = load_audio(sample_path("speech.wav"))
    with av.open(str(generated)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video)]
    assert len(frames) == len(speech) // 640 and frames[0].shape == (512, 512, 3)
    assert not list(generated.parent.glob(".moda-*"))


def test_the_mouth_moves_with_the_speech(generated):
    """Darkness of the mouth region (an open mouth shows the cavity) follows the audio energy."""
    with FaceMeshDetector() as detector:
        face = detector.largest(sample_portrait())
    lips = face.landmarks[[13, 14, 61, 291]]
    x0, y0 = lips.min(0).astype(int) - [2, 6]
    x1, y1 = lips.max(0).astype(int) + [2, 14]
    with av.open(str(generated)) as container:
        darkness = np.array([255 - f.to_ndarray(format="rgb24")[y0:y1, x0:x1].mean() for f in container.decode(video=0)])
    speech = load_audio(sample_path("speech.wav"))
    frames = len(darkness)
    energy = np.sqrt((speech[: frames * 640].reshape(frames, 640) ** 2).mean(1))
    smooth = lambda x: np.convolve(x, np.ones(3) / 3, mode="same")  # noqa: E731
    correlation = np.corrcoef(smooth(darkness), smooth(energy))[0, 1]
    assert darkness.std() > 3  # it moves
    assert correlation > 0.3, correlation


def test_python_api_is_reproducible_and_takes_emotion_and_guidance(tmp_path):
    from moda import GenerateOptions, Pipeline

    pipeline = Pipeline.default()
    soundfile.write(tmp_path / "short.wav", load_audio(sample_path("speech.wav"))[:32000], 16000)
    options = GenerateOptions(emotion="happy", cfg_audio=2.0, cfg_emotion=1.5, seed=3)
    outputs = [pipeline.generate(sample_path("portrait.jpg"), tmp_path / "short.wav", tmp_path / f"{i}.mp4", options,
                                 progress=False) for i in range(2)]
    decoded = [[f.to_ndarray(format="rgb24") for f in av.open(str(p)).decode(video=0)] for p in outputs]
    assert len(decoded[0]) == 50 and all(np.array_equal(a, b) for a, b in zip(*decoded))


def _bad_case(tmp_path, case):
    image, audio = str(sample_path("portrait.jpg")), str(sample_path("speech.wav"))
    out, extra = tmp_path / "out.mp4", []
    if case == "missing image":
        image = str(tmp_path / "nope.jpg")
    elif case == "not an image":
        (tmp_path / "x.jpg").write_text("hello")
        image = str(tmp_path / "x.jpg")
    elif case == "no face":
        Image.new("RGB", (300, 300), (120, 130, 140)).save(tmp_path / "wall.png")
        image = str(tmp_path / "wall.png")
    elif case == "tiny image":
        Image.new("RGB", (32, 32)).save(tmp_path / "tiny.png")
        image = str(tmp_path / "tiny.png")
    elif case == "huge image":
        Image.new("1", (9000, 9000)).save(tmp_path / "huge.png")
        image = str(tmp_path / "huge.png")
    elif case == "truncated image":
        data = sample_path("portrait.jpg").read_bytes()
        (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
        image = str(tmp_path / "cut.jpg")
    elif case == "corrupt audio":
        (tmp_path / "a.mp3").write_bytes(b"\xff\xfb" + b"\x00" * 100)
        audio = str(tmp_path / "a.mp3")
    elif case == "empty audio":
        soundfile.write(tmp_path / "e.wav", np.zeros(0, np.float32), 16000)
        audio = str(tmp_path / "e.wav")
    elif case == "0.1 s audio":
        soundfile.write(tmp_path / "s.wav", np.zeros(1600, np.float32), 16000)
        audio = str(tmp_path / "s.wav")
    elif case == "unwritable output":
        out = tmp_path / "missing_folder" / "out.mp4"
    elif case == "existing output":
        out.write_bytes(b"old")
    elif case == "unknown emotion":
        extra = ["--emotion", "bored"]
    elif case == "unknown transcript word":
        extra = ["--text", "hello xyzzy"]
    run = moda("generate", "--image", image, "--audio", audio, "--out", str(out), "--quiet", *extra)
    return run, out


@pytest.mark.parametrize("case,message", [
    ("missing image", "image not found"), ("not an image", "cannot read"), ("no face", "no face found"),
    ("tiny image", "at least 64 px"), ("huge image", "megapixels"), ("truncated image", "corrupt or truncated"),
    ("corrupt audio", "decode"), ("empty audio", "no audio samples"),
    ("0.1 s audio", "at least 0.2 s"), ("unwritable output", "does not exist"), ("existing output", "--overwrite"),
    ("unknown emotion", "unknown emotion"), ("unknown transcript word", "does not know: xyzzy"),
])
def test_bad_input_is_a_one_line_error_without_output(tmp_path, case, message):
    run, out = _bad_case(tmp_path, case)
    assert run.returncode == 2, run.stdout + run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("moda: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in run.stderr
    if case == "existing output":
        assert out.read_bytes() == b"old"
    else:
        assert not out.exists()
    assert not list(tmp_path.glob(".moda-*"))


def test_streaming_yields_the_same_frames_as_generate(tmp_path):
    import torch

    from moda import GenerateOptions, Pipeline
    from moda.generator.sampler import Guidance
    from moda.pipeline.backend import MotionRequest

    pipeline = Pipeline.default()
    backend = pipeline.backend
    speech = load_audio(sample_path("speech.wav"))[: 16000 * 4]
    subject = backend.prepare(sample_portrait(), "portrait")
    request = MotionRequest(8, Guidance(backend.default_guidance), torch.Generator().manual_seed(5))
    motion = backend.motion(subject, speech, request)
    offline = list(backend.frames(subject, motion))  # what `generate` encodes
    chunks = (speech[i : i + 4000] for i in range(0, len(speech), 4000))  # 0.25 s at a time
    streamed = list(pipeline.stream(sample_path("portrait.jpg"), chunks, GenerateOptions(seed=5)))
    assert len(streamed) == len(offline) == 100
    assert all(np.array_equal(a, b) for a, b in zip(streamed, offline))


def test_streaming_first_frames_arrive_after_one_window_of_audio():
    from moda import Pipeline

    pipeline = Pipeline.default()
    speech = load_audio(sample_path("speech.wav"))
    enough = int((3.2 + 0.4 + 0.1) * 16000)  # one 80-frame window, the front-end's 0.4 s lookahead, a chunk
    first_frame, waited_in_vain = threading.Event(), []

    def chunks():
        for i in range(0, len(speech), 1600):  # 0.1 s at a time, as a microphone would give it
            if i >= enough and not first_frame.wait(60):  # hold the rest back until a frame has come
                waited_in_vain.append(i)
            yield speech[i : i + 1600]

    stream = pipeline.stream(sample_path("portrait.jpg"), chunks())
    next(stream)
    first_frame.set()
    assert not waited_in_vain
    assert len(list(stream)) == len(speech) // 640 - 1


def test_silence_gives_a_video_with_a_still_mouth(tmp_path, generated):
    soundfile.write(tmp_path / "quiet.wav", np.zeros(16000 * 2, np.float32), 16000)
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(tmp_path / "quiet.wav"),
               "--out", str(tmp_path / "quiet.mp4"), "--quiet")
    assert run.returncode == 0, run.stderr
    with FaceMeshDetector() as detector:
        lips = detector.largest(sample_portrait()).landmarks[[13, 14, 61, 291]]
    x0, y0 = lips.min(0).astype(int) - [2, 6]
    x1, y1 = lips.max(0).astype(int) + [2, 14]

    def mouth_darkness(path):
        with av.open(str(path)) as container:
            return np.array([255 - f.to_ndarray(format="rgb24")[y0:y1, x0:x1].mean() for f in container.decode(video=0)])

    quiet, speaking = mouth_darkness(tmp_path / "quiet.mp4"), mouth_darkness(generated)
    assert len(quiet) == 50 and quiet.std() < 0.5 * speaking.std()


def test_long_audio_runs_in_bounded_memory(tmp_path):
    """Frames stream to the encoder and long audio is featurised in pieces: 2 min cost little more than 10 s
    (benchmarks/generate.py measures 60 s; 10 min took 4.5 min of this suite's 15)."""
    Image.fromarray(sample_portrait()).resize((192, 192)).save(tmp_path / "small.png")  # keeps the test short
    speech = load_audio(sample_path("speech.wav"))
    peaks = {}
    for seconds in (10, 120):
        audio = np.tile(speech, int(np.ceil(seconds * 16000 / len(speech))))[: seconds * 16000]
        soundfile.write(tmp_path / f"{seconds}.wav", audio, 16000, subtype="PCM_16")
        code = ("import resource, sys; from moda.cli.main import main; "
                "code = main(['generate', '--image', sys.argv[1], '--audio', sys.argv[2], '--out', sys.argv[3], "
                "'--quiet']); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
        run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "small.png"), str(tmp_path / f"{seconds}.wav"),
                              str(tmp_path / f"{seconds}.mp4")], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        peaks[seconds] = int(run.stdout.split()[-1]) / 1024  # MB
    with av.open(str(tmp_path / "120.mp4")) as container:
        assert container.streams.video[0].frames == 3000
        assert abs(float(container.duration / 1e6) - 120) < 0.5
    assert peaks[120] < peaks[10] + 100, peaks


def test_a_fifth_of_a_second_of_speech_is_enough(tmp_path):
    soundfile.write(tmp_path / "blip.wav", load_audio(sample_path("speech.wav"))[16000 : 16000 + 3200], 16000)
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(tmp_path / "blip.wav"),
               "--out", str(tmp_path / "blip.mp4"), "--quiet")
    assert run.returncode == 0, run.stderr
    with av.open(str(tmp_path / "blip.mp4")) as container:
        assert container.streams.video[0].frames == 5


@pytest.mark.parametrize("mode", ["RGBA", "L", "CMYK"])
def test_rgba_grayscale_and_cmyk_portraits_work(tmp_path, mode):
    portrait = Image.fromarray(sample_portrait()).convert(mode)
    path = tmp_path / ("portrait.jpg" if mode == "CMYK" else "portrait.png")
    portrait.save(path)
    soundfile.write(tmp_path / "one.wav", load_audio(sample_path("speech.wav"))[16000:32000], 16000)
    run = moda("generate", "--image", str(path), "--audio", str(tmp_path / "one.wav"), "--out",
               str(tmp_path / "out.mp4"), "--quiet")
    assert run.returncode == 0, run.stderr[-2000:]
    with av.open(str(tmp_path / "out.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert frame.shape == (512, 512, 3)


@pytest.mark.parametrize("face", ["s1.jpg", "s12.jpg"])  # an open smile with teeth; a closed mouth
def test_real_speech_opens_the_mouth_on_vowels_and_closes_it_on_bilabials(tmp_path, face):
    """The default mode on a real recording (CMU read speech with several M / B / P) and a real photo, measured
    from the video's pixels."""
    from moda import Pipeline
    from moda.evaluation.score import score_video
    from tests.helpers import SHARED

    speech = SHARED / "real" / "speech" / "forever4.wav"
    out = Pipeline.default().generate(SHARED / "real" / "faces" / face, speech, tmp_path / "real.mp4", progress=False)
    score = score_video(out, speech)
    assert score.vowel_bilabial_d > 2.0, score.summary()
    assert score.open_vowel_open_share > 0.7 and score.bilabial_closed_share > 0.5, score.summary()
    assert score.envelope_corr > 0.5 and score.identity_drift < 0.05, score.summary()


@pytest.mark.parametrize("extra,message", [
    (["--cfg-audio", "inf"], "--cfg-audio inf is out of range"), (["--cfg-audio", "nan"], "--cfg-audio nan is out"),
    (["--cfg-emotion", "-1"], "--cfg-emotion -1.0 is out of range"),
])
def test_guidance_out_of_range_is_a_one_line_error(tmp_path, extra, message):
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(sample_path("speech.wav")),
               "--out", str(tmp_path / "o.mp4"), "--quiet", *extra)
    errors = [line for line in run.stderr.splitlines() if line.startswith("moda: error:")]
    assert run.returncode == 2 and len(errors) == 1 and message in errors[0], run.stderr[-500:]
    assert not (tmp_path / "o.mp4").exists()


def test_non_finite_audio_and_an_output_naming_an_input_are_refused(tmp_path):
    speech = load_audio(sample_path("speech.wav"))[:16000]
    speech[100:300] = np.inf
    soundfile.write(tmp_path / "inf.wav", speech, 16000, subtype="FLOAT")
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(tmp_path / "inf.wav"),
               "--out", str(tmp_path / "o.mp4"), "--quiet")
    assert run.returncode == 2 and "NaN or infinite samples" in run.stderr and not (tmp_path / "o.mp4").exists()
    from moda.media.video import Mp4Writer

    with Mp4Writer(tmp_path / "speech.mp4", 25, 64, 64, 16000) as writer:  # speech inside an mp4
        writer.write(np.zeros((64, 64, 3), np.uint8))
        writer.write_audio(load_audio(sample_path("speech.wav"))[:16000])
    before = (tmp_path / "speech.mp4").read_bytes()
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(tmp_path / "speech.mp4"),
               "--out", str(tmp_path / "speech.mp4"), "--overwrite", "--quiet")
    assert run.returncode == 2 and "is the input audio" in run.stderr
    assert (tmp_path / "speech.mp4").read_bytes() == before


def test_a_duration_limit_and_a_non_mp4_output_name_are_one_line_errors(tmp_path):
    soundfile.write(tmp_path / "long.wav", np.zeros(16000 * 30, np.float32), 16000)
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(tmp_path / "long.wav"),
               "--out", str(tmp_path / "o.mp4"), "--max-duration", "10", "--quiet")
    assert run.returncode == 2 and run.stderr.splitlines() == [
        f"moda: error: audio {tmp_path / 'long.wav'} is 30 s long; the limit is 10 s (--max-duration); "
        "cut it into parts or raise the limit"], run.stderr
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(sample_path("speech.wav")),
               "--out", str(tmp_path / "video.wav"), "--quiet")
    assert run.returncode == 2 and "does not end in .mp4" in run.stderr and not (tmp_path / "video.wav").exists()


def test_stream_chunks_are_checked_and_integer_pcm_is_scaled():
    from moda.errors import MoDAError
    from moda.pipeline.generate import checked_chunks

    pcm = (np.sin(np.arange(800) / 5) * 16384).astype(np.int16)
    (scaled,) = checked_chunks([pcm])
    assert scaled.dtype == np.float32 and abs(scaled.max() - 0.5) < 1e-3
    with pytest.raises(MoDAError, match="shape \\(2, 100\\)"):
        list(checked_chunks([np.zeros((2, 100))]))
    with pytest.raises(MoDAError, match="NaN or infinite"):
        list(checked_chunks([np.array([0.0, np.nan])]))


def test_a_huge_seed_a_sliver_image_and_a_long_output_name(tmp_path):
    from PIL import Image

    def errors(run):
        return [line for line in run.stderr.splitlines() if line.startswith("moda: error:")]

    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(sample_path("speech.wav")),
               "--out", str(tmp_path / "o.mp4"), "--seed", str(2**64), "--quiet")
    assert run.returncode == 2 and "--seed" in errors(run)[0]
    Image.new("RGB", (30000, 64), (128, 128, 128)).save(tmp_path / "sliver.png")
    run = moda("generate", "--image", str(tmp_path / "sliver.png"), "--audio", str(sample_path("speech.wav")),
               "--out", str(tmp_path / "o.mp4"), "--quiet")
    assert run.returncode == 2 and len(errors(run)) == 1 and "narrower" in errors(run)[0]
    soundfile.write(tmp_path / "one.wav", load_audio(sample_path("speech.wav"))[:8000], 16000)
    long_name = tmp_path / ("x" * 246 + ".mp4")
    run = moda("generate", "--image", str(sample_path("portrait.jpg")), "--audio", str(tmp_path / "one.wav"),
               "--out", str(long_name), "--quiet")
    assert run.returncode == 0 and long_name.is_file(), run.stderr[-500:]


def test_the_python_api_names_a_wrong_argument_type_and_survives_extreme_levels(tmp_path):
    from moda import Pipeline
    from moda.errors import MoDAError

    pipeline = Pipeline.default()
    with pytest.raises(MoDAError, match="audio must be a file path"):
        pipeline.generate(sample_path("portrait.jpg"), 12345, tmp_path / "o.mp4")  # type: ignore[arg-type]
    with pytest.raises(MoDAError, match="image must be a file path"):
        next(pipeline.stream(np.zeros((64, 64, 3)), []))  # type: ignore[arg-type]
    loud = load_audio(sample_path("speech.wav"))[:24000].astype(np.float64) * 1e30  # finite, far beyond full scale
    soundfile.write(tmp_path / "loud.wav", loud, 16000, subtype="DOUBLE")
    with pytest.warns(UserWarning, match="beyond full scale"):
        out = pipeline.generate(sample_path("portrait.jpg"), tmp_path / "loud.wav", tmp_path / "loud.mp4",
                                progress=False)
    with av.open(str(out)) as container:
        assert container.streams.audio and container.streams.video[0].frames >= 30


@pytest.mark.parametrize("render_thread", [False, True])
def test_frames_rendered_in_their_own_thread_are_the_same_and_a_cancel_still_leaves_no_file(tmp_path, monkeypatch,
                                                                                            render_thread):
    """Large portraits render in a thread of their own (`RENDER_THREAD_MIN_PIXELS`): the video is the same
    frame for frame, and an exception from the progress callback still stops the run without output."""
    import moda.pipeline.generate as generate_module
    from moda import GenerateOptions, Pipeline
    from moda.media.video import read_frames_at

    pipeline = Pipeline.default()
    speech = tmp_path / "speech.wav"
    soundfile.write(speech, load_audio(sample_path("speech.wav"))[: 16000 * 2], 16000)
    inline = pipeline.generate(sample_path("portrait.jpg"), speech, tmp_path / "inline.mp4", GenerateOptions(seed=3),
                               progress=False)
    monkeypatch.setattr(generate_module, "RENDER_THREAD_MIN_PIXELS", 0 if render_thread else 10**9)
    threaded = pipeline.generate(sample_path("portrait.jpg"), speech, tmp_path / "threaded.mp4",
                                 GenerateOptions(seed=3), progress=False)
    first, second = list(read_frames_at(inline, 25)), list(read_frames_at(threaded, 25))
    assert len(first) == len(second) == 50
    assert all(np.array_equal(a, b) for a, b in zip(first, second))

    def stop_at_frame_20(stage, done, total, frame):
        if stage == "render" and done == 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline.generate(sample_path("portrait.jpg"), speech, tmp_path / "cancelled.mp4", GenerateOptions(seed=3),
                          progress=False, on_progress=stop_at_frame_20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inline.mp4", "speech.wav", "threaded.mp4"]
    assert not [t for t in threading.enumerate() if t.name == "moda-prefetch"]  # the workers stopped with the run


def test_a_transcript_is_for_one_whole_clip(tmp_path):
    from moda.errors import MoDAError
    from moda.pipeline.generate import GenerateOptions, Pipeline

    with pytest.raises(MoDAError, match="streaming takes none"):
        next(Pipeline.default().stream(sample_path("portrait.jpg"), [np.zeros(1600, np.float32)],
                                       GenerateOptions(transcript="hello")))
    (tmp_path / "jobs.csv").write_text(f"image,audio\n{sample_path('portrait.jpg')},{sample_path('speech.wav')}\n")
    run = moda("generate", "--manifest", str(tmp_path / "jobs.csv"), "--out-dir", str(tmp_path / "out"), "--text", "hi")
    assert run.returncode == 2 and "in a text column" in run.stderr and "Traceback" not in run.stderr


def test_a_transcript_is_refused_by_a_model_that_does_not_follow_phones():
    from types import SimpleNamespace

    from moda.errors import MoDAError
    from moda.pipeline.backend import Capabilities
    from moda.pipeline.generate import GenerateOptions, Pipeline

    hubert_model = SimpleNamespace(capabilities=Capabilities(streams=False, emotions=True, transcripts=False),
                                   default_guidance=1.5)
    with pytest.raises(MoDAError, match="give no transcript"):
        Pipeline(hubert_model)._request(GenerateOptions(transcript="hello"), np.zeros(16000, np.float32))
