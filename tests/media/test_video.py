import numpy as np
import pytest

from moda.errors import MoDAError
from moda.media.video import Mp4Writer, check_output_path, read_frames_at


def write_counter(path, fps, seconds=2):
    """Frame i shows grey level 10 * i (i < 25), so each decoded frame tells which source frame it is."""
    with Mp4Writer(path, fps, 64, 64) as writer:
        for i in range(fps * seconds):
            writer.write(np.full((64, 64, 3), 10 * (i % 25), np.uint8))
    return path


@pytest.mark.parametrize("fps", [50, 30, 25, 15])
def test_frames_are_resampled_to_25_fps_by_timestamp(tmp_path, fps):
    frames = list(read_frames_at(write_counter(tmp_path / "v.mp4", fps), 25))
    assert len(frames) == 50
    shown = [round(f.mean() / 10) for f in frames[:10]]
    expected = [int(k * fps / 25 + 1e-9) % 25 for k in range(10)]  # the source frame on screen at k / 25 s
    assert shown == expected


def test_writer_leaves_no_file_when_interrupted(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError):
        with Mp4Writer(out, 25, 64, 64) as writer:
            writer.write(np.zeros((64, 64, 3), np.uint8))
            raise RuntimeError("interrupted")
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(MoDAError, match="no frames"):
        with Mp4Writer(out, 25, 64, 64):
            pass
    assert not list(tmp_path.iterdir())


def test_a_signal_while_the_writer_opens_leaves_no_file(tmp_path, monkeypatch):
    import av

    def interrupted(*_args, **_kwargs):  # Ctrl-C between creating the temporary file and entering `with`
        raise KeyboardInterrupt

    monkeypatch.setattr(av, "open", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Mp4Writer(tmp_path / "out.mp4", 25, 64, 64)
    assert not list(tmp_path.iterdir())


def test_output_path_checks(tmp_path):
    (tmp_path / "taken.mp4").write_bytes(b"x")
    with pytest.raises(MoDAError, match="--overwrite"):
        check_output_path(tmp_path / "taken.mp4", overwrite=False)
    assert check_output_path(tmp_path / "taken.mp4", overwrite=True) == tmp_path / "taken.mp4"
    with pytest.raises(MoDAError, match="is a directory"):
        check_output_path(tmp_path, overwrite=True)
    with pytest.raises(MoDAError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "x.mp4", overwrite=False)


def test_outputs_honour_the_umask_and_keep_a_replaced_files_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        with Mp4Writer(tmp_path / "new.mp4", 25, 32, 32) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
        assert (tmp_path / "new.mp4").stat().st_mode & 0o777 == 0o644
        (tmp_path / "old.mp4").write_bytes(b"x")
        (tmp_path / "old.mp4").chmod(0o640)
        with Mp4Writer(tmp_path / "old.mp4", 25, 32, 32, overwrite=True) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
        assert (tmp_path / "old.mp4").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def _one_frame(path, overwrite=False):
    with Mp4Writer(path, 25, 32, 32, overwrite=overwrite) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))


def test_creating_a_new_output_is_atomic_when_another_run_wins_the_race(tmp_path):
    """Both runs checked that out.mp4 was absent; the one that finishes second must not replace the first's."""
    out = tmp_path / "out.mp4"
    writer = Mp4Writer(out, 25, 32, 32)
    writer.write(np.zeros((32, 32, 3), np.uint8))
    out.write_bytes(b"the other run's video")
    with pytest.raises(MoDAError, match="appeared while this run was writing"):
        writer.close()
    assert out.read_bytes() == b"the other run's video"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no partial file left


def test_special_files_and_wrong_names_are_refused_as_outputs(tmp_path):
    import os

    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    with pytest.raises(MoDAError, match="not a regular file"):
        check_output_path(fifo, overwrite=True)
    with pytest.raises(MoDAError, match="not a regular file"):
        _one_frame(fifo, overwrite=True)
    assert fifo.is_fifo()
    with pytest.raises(MoDAError, match="does not end in .mp4"):
        check_output_path(tmp_path / "speech.wav", overwrite=False)
    assert check_output_path(tmp_path / "Clip.MP4", overwrite=False).name == "Clip.MP4"


def test_a_symbolic_link_as_output_is_replaced_and_its_target_kept(tmp_path):
    target = tmp_path / "elsewhere.mp4"
    target.write_bytes(b"keep me")
    link = tmp_path / "link.mp4"
    link.symlink_to(target)
    _one_frame(link, overwrite=True)
    assert not link.is_symlink() and link.stat().st_size > 100
    assert target.read_bytes() == b"keep me"


def test_a_full_disk_while_finishing_is_one_error_and_leaves_no_file(tmp_path):
    import errno

    writer = Mp4Writer(tmp_path / "out.mp4", 25, 32, 32)
    writer.write(np.zeros((32, 32, 3), np.uint8))
    class FullDisk:  # the container, whose final write finds the disk full
        def __init__(self, container):
            self.container = container

        def mux(self, packets):
            self.container.mux(packets)

        def close(self):
            self.container.close()
            raise OSError(errno.ENOSPC, "No space left on device")

    writer.container = FullDisk(writer.container)
    with pytest.raises(MoDAError, match="check the free space"):
        writer.close()
    assert list(tmp_path.iterdir()) == []
