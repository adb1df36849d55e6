import pickle

import pytest
import torch
from safetensors.torch import save_file

from moda.errors import MoDAError, WeightsNotFoundError
from moda.generator.checkpoint import load_motion_generator, released_null_audio_feat
from moda.generator.model import MotionGenerator
from tests.helpers import randomize, tiny_config


def _released_layout(model: MotionGenerator, **extra) -> dict:
    """What net-200.pth holds: a flat dict of `talking_head_dit.*` tensors plus `scheduler.sigmas`."""
    state = dict(model.state_dict())
    state.update(extra)
    return state


@pytest.fixture
def trained():
    return randomize(MotionGenerator(tiny_config())).eval()


def _predict(model):
    g = torch.Generator().manual_seed(0)
    args = (torch.randn(1, 80, 140, generator=g), torch.tensor([500.0]), torch.randn(1, 80, 1, 2, 8, generator=g),
            torch.tensor([2]), torch.randn(1, 80, 63, generator=g))
    with torch.no_grad():
        return model.talking_head_dit(*args)


def test_pth_checkpoint_loads_unchanged_and_reproduces_the_model(tmp_path, trained):
    path = tmp_path / "net-200.pth"
    torch.save(_released_layout(trained), path)
    loaded = load_motion_generator(path, tiny_config(), null_audio="zeros")
    assert torch.equal(_predict(loaded), _predict(trained))
    assert not loaded.training


def test_safetensors_checkpoint_and_checkpoint_null_feature(tmp_path, trained):
    null = torch.randn(1, 1, 1, 1, 8)
    path = tmp_path / "net.safetensors"
    save_file(_released_layout(trained, null_audio_feat=null, null_motion_feat=torch.zeros(1, 1, 70)), path)
    loaded = load_motion_generator(path, tiny_config())  # auto: the file's own null feature
    assert torch.equal(loaded.null_audio_feat, null.expand(1, 1, 1, 2, 8))


def test_missing_scheduler_buffer_is_filled_in(tmp_path, trained):
    state = _released_layout(trained)
    del state["scheduler.sigmas"]
    torch.save(state, tmp_path / "net.pth")
    loaded = load_motion_generator(tmp_path / "net.pth", tiny_config(), null_audio="zeros")
    assert torch.equal(loaded.scheduler.sigmas, torch.arange(1, 1001) / 1000)


def test_wrong_layout_and_wrong_width_are_clear_errors(tmp_path, trained):
    state = _released_layout(trained)
    torch.save({"model": state}, tmp_path / "wrapped.pth")
    with pytest.raises(MoDAError, match="does not match the generator layout"):
        load_motion_generator(tmp_path / "wrapped.pth", tiny_config())
    torch.save(state, tmp_path / "net.pth")
    with pytest.raises(MoDAError, match="shape"):
        load_motion_generator(tmp_path / "net.pth", tiny_config(hidden_size=48, num_heads=3))


def test_pickled_code_is_never_executed(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('pwned').write_text('x')",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"talking_head_dit.x": Exploit()}, f)
    with pytest.raises(MoDAError, match="refuses to unpickle|not a readable"):
        load_motion_generator(path, tiny_config())
    assert not (tmp_path / "pwned").exists()


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="not found"):
        load_motion_generator(tmp_path / "absent.pth", tiny_config())
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MoDAError):
        load_motion_generator(tmp_path / "junk.pth", tiny_config())
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(MoDAError, match="safetensors"):
        load_motion_generator(tmp_path / "junk.safetensors", tiny_config())


def test_released_null_feature_ships_with_the_package():
    feat = released_null_audio_feat()
    assert feat.shape == (1, 1, 1, 1, 768)
    assert 0.8 < feat.std().item() < 1.2  # a standard normal draw
