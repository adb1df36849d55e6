import json

import pytest
import torch

from moda.generator.config import MODA_BASE, DiTConfig
from moda.generator.dit import TalkingHeadDiT
from moda.generator.layers import apply_rope, rope_tables
from moda.generator.model import MotionGenerator
from tests.helpers import randomize, tiny_config


def test_production_model_matches_released_checkpoint_layout(golden):
    """Every key and shape of net-200.pth, in order, with the released parameter count."""
    manifest = json.loads((golden / "full_keys.json").read_text())
    model = MotionGenerator(MODA_BASE)
    state = model.state_dict()
    assert list(state) == list(manifest["keys"])
    for key, spec in manifest["keys"].items():
        assert tuple(state[key].shape) == tuple(spec["shape"]), key
        assert state[key].dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == manifest["total_learnable_parameters"] == 372_983_878
    per_module = {f"talking_head_dit.{n}": sum(p.numel() for p in m.parameters())
                  for n, m in model.talking_head_dit.named_children()}
    assert per_module == manifest["params_per_top_level_module"]


def test_config_reads_reference_kwargs_and_ignores_what_the_reference_ignores():
    config = DiTConfig.from_kwargs({"hidden_size": 64, "num_heads": 4, "depth": 99, "audio_embedder_type": "simple",
                                    "norm_type": "rms_norm", "qk_norm": "rms_norm"})
    assert (config.hidden_size, config.head_dim, config.single_stream_blocks) == (64, 16, 12)
    with pytest.raises(ValueError, match="divisible"):
        DiTConfig(hidden_size=30, num_heads=4)


def _inputs(config: DiTConfig, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n = config.seq_len
    return (
        torch.randn(batch, n, config.input_dim, generator=g),
        torch.tensor([1000.0, 334.0][:batch]),
        torch.randn(batch, n, config.audio_unit_len, config.audio_blocks, config.audio_dim, generator=g),
        torch.tensor([3, 8][:batch]),
        torch.randn(batch, n, config.audio_cond_dim, generator=g),
    )


def test_freshly_initialised_model_predicts_zero_velocity():
    """adaLN-Zero: zeroed modulation and output layers make a new model the identity residual stack."""
    model = TalkingHeadDiT(tiny_config()).eval()
    with torch.no_grad():
        out = model(*_inputs(model.config))
    assert out.shape == (2, 80, 70)
    assert torch.count_nonzero(out) == 0


def test_forward_is_deterministic_and_batch_independent():
    model = randomize(TalkingHeadDiT(tiny_config())).eval()
    inputs = _inputs(model.config)
    with torch.no_grad():
        both = model(*inputs)
        again = model(*inputs)
        first = model(*(x[:1] for x in inputs))
    assert torch.equal(both, again)
    torch.testing.assert_close(both[:1], first, atol=1e-5, rtol=1e-5)


def test_the_motion_only_last_block_gives_the_same_output_and_gradients():
    """The sampler's and the trainer's shortcut: the last block computes only the motion tokens."""
    model = randomize(TalkingHeadDiT(tiny_config()))
    inputs = _inputs(model.config)
    full = model(*inputs)
    full.square().sum().backward()
    full_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    short = model(*inputs, motion_only_last_block=True)
    short.square().sum().backward()
    torch.testing.assert_close(short, full, atol=1e-5, rtol=1e-5)
    for expected, parameter in zip(full_grads, model.parameters()):
        torch.testing.assert_close(parameter.grad, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("argument", [1, 2, 3, 4])
def test_every_condition_changes_the_prediction(argument):
    """Timestep, audio, emotion and identity all reach the output."""
    model = randomize(TalkingHeadDiT(tiny_config())).eval()
    inputs = list(_inputs(model.config))
    changed = list(inputs)
    changed[argument] = {1: torch.tensor([500.0, 10.0]), 2: inputs[2].flip(1), 3: torch.tensor([0, 5]),
                         4: inputs[4] + 1.0}[argument]
    with torch.no_grad():
        assert (model(*inputs) - model(*changed)).abs().max() > 1e-3


def test_rope_rotation_preserves_norms_and_depends_only_on_relative_position():
    head_dim = 16
    cos, sin = rope_tables(torch.arange(40), head_dim, theta=256.0)
    q = torch.randn(1, 1, 1, head_dim).expand(1, 1, 40, head_dim)
    k = torch.randn(1, 1, 1, head_dim).expand(1, 1, 40, head_dim)
    rq, rk = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))
    # <R(p) q, R(p + 5) k> is the same for every p.
    dots = (rq[..., :-5, :] * rk[..., 5:, :]).sum(-1)
    torch.testing.assert_close(dots, dots[..., :1].expand_as(dots), atol=1e-5, rtol=1e-5)
    # Interleaved pairs: channels (0, 1) rotate by position * theta^0 = 1 radian per step.
    v = torch.zeros(1, 1, 2, head_dim)
    v[..., 0] = 1.0
    rotated = apply_rope(v, cos[:2], sin[:2])
    torch.testing.assert_close(rotated[0, 0, 1, :2], torch.tensor([torch.cos(torch.tensor(1.0)), torch.sin(torch.tensor(1.0))]))


def test_rope_positions_restart_for_each_stream_segment():
    model = TalkingHeadDiT(tiny_config())
    cos, _ = model.rope(3 * 80, torch.device("cpu"))
    torch.testing.assert_close(cos[80:160], cos[:80], rtol=0, atol=0)
    torch.testing.assert_close(cos[160:], cos[:80], rtol=0, atol=0)
