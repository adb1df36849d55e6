import torch

from moda.generator.flow_matching import FlowMatchingScheduler
from moda.generator.model import MotionGenerator
from moda.generator.objective import ConditionDropout, LossWeights, TrainingBatch, drop_conditions, flow_matching_loss
from moda.generator.sampler import sample_window
from tests.helpers import tiny_config


def test_euler_grid_matches_the_released_schedule():
    steps = FlowMatchingScheduler().euler_steps()
    assert [s.timestep.item() for s in steps] == [1000, 889, 778, 667, 556, 445, 334, 223, 112, 1]
    assert steps[-1].sigma_next.item() == 0.0
    torch.testing.assert_close(steps[-1].dt, torch.tensor(-0.001))
    torch.testing.assert_close(sum(s.dt for s in steps), torch.tensor(-1.0))
    for a, b in zip(steps[:-1], steps[1:]):  # equal up to float32 rounding, as in the released grid
        torch.testing.assert_close(a.sigma_next, b.sigma)


def test_noisy_sample_and_velocity_define_a_straight_path():
    x0, noise = torch.randn(3, 80, 70), torch.randn(3, 80, 70)
    sigma = torch.tensor([0.0, 0.5, 1.0])
    noisy = FlowMatchingScheduler.noisy_sample(x0, noise, sigma)
    torch.testing.assert_close(noisy[0], x0[0])
    torch.testing.assert_close(noisy[2], noise[2])
    velocity = FlowMatchingScheduler.velocity_target(x0, noise)
    torch.testing.assert_close(noisy[1], x0[1] + 0.5 * velocity[1])


def test_euler_sampling_with_the_true_velocity_recovers_the_data():
    """With an oracle velocity field the 10-step sampler lands exactly on x0."""
    model = MotionGenerator(tiny_config()).eval()
    x0 = torch.randn(1, 80, 70)

    class Oracle(torch.nn.Module):
        def forward(self, motion, times, audio, emo, audio_cond, motion_only_last_block=False):
            sigma = (times / 1000).reshape(-1, 1, 1)
            latents = motion[..., 70:]
            return (latents - x0) / sigma  # noise - x0 for the straight path through `latents`

    model.talking_head_dit = Oracle()
    noise = torch.randn(1, 80, 70)
    out = sample_window(model, torch.zeros(1, 80, 1, 2, 8), torch.zeros(1, 63), torch.zeros(1, 1, 70),
                              torch.tensor([8]), noise)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4)


def test_training_sigmas_lie_on_the_grid_and_follow_the_distribution():
    scheduler = FlowMatchingScheduler()
    g = torch.Generator().manual_seed(0)
    uniform = scheduler.sample_training_sigmas(20000, g)
    torch.testing.assert_close(uniform * 1000, (uniform * 1000).round())
    assert uniform.min() >= 0.001 and uniform.max() <= 1.0
    assert abs(uniform.mean().item() - 0.5) < 0.01
    logit = scheduler.sample_training_sigmas(20000, g, "logit_normal")
    assert ((logit > 0.25) & (logit < 0.75)).float().mean() > ((uniform > 0.25) & (uniform < 0.75)).float().mean() + 0.1


def test_condition_dropout_replaces_with_null_values_at_the_requested_rate(tiny_generator):
    audio = torch.ones(4000, 2, 1, 2, 8)
    emo = torch.full((4000,), 3)
    dropped_audio, dropped_emo = drop_conditions(tiny_generator.null_audio_feat, audio, emo,
                                                 ConditionDropout(audio=0.3, emotion=0.1), torch.Generator().manual_seed(0))
    audio_dropped = torch.all(dropped_audio == tiny_generator.null_audio_feat, dim=(1, 2, 3, 4))
    assert torch.all(audio_dropped | torch.all(dropped_audio == 1, dim=(1, 2, 3, 4)))
    assert abs(audio_dropped.float().mean().item() - 0.3) < 0.03
    assert abs((dropped_emo == 8).float().mean().item() - 0.1) < 0.02
    assert set(dropped_emo.tolist()) == {3, 8}


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return TrainingBatch(
        motion=torch.randn(4, 80, 70, generator=g), prev_motion=torch.randn(4, 1, 70, generator=g),
        audio=torch.randn(4, 80, 1, 2, 8, generator=g), emo=torch.randint(0, 9, (4,), generator=g),
        ref_kp=torch.randn(4, 63, generator=g),
    )


def test_loss_is_reproducible_weightable_and_trainable(tiny_generator):
    batch = _batch()
    loss = flow_matching_loss(tiny_generator, batch, rng=torch.Generator().manual_seed(5))["loss"]
    again = flow_matching_loss(tiny_generator, batch, rng=torch.Generator().manual_seed(5))["loss"]
    assert torch.equal(loss, again)
    silent = LossWeights(lip=0, expression=0, pose=0)
    assert flow_matching_loss(tiny_generator, batch, rng=torch.Generator().manual_seed(5), weights=silent)["loss"] == 0
    smooth = flow_matching_loss(tiny_generator, batch, rng=torch.Generator().manual_seed(5),
                                weights=LossWeights(smoothness=0.5))
    torch.testing.assert_close(smooth["loss"], loss + 0.5 * smooth["smoothness"])
    assert smooth["smoothness"] > 0

    tiny_generator.train()
    optimizer = torch.optim.AdamW(tiny_generator.parameters(), lr=3e-3)
    fixed = _batch(1)
    fixed.motion = 3.0 + 0.1 * fixed.motion  # structured data: far from the noise, learnable
    losses = []
    for step in range(60):
        loss = flow_matching_loss(tiny_generator, fixed, rng=torch.Generator().manual_seed(step))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5


def test_loss_weights_cover_lip_expression_and_pose_dims():
    weights = LossWeights(lip=3.0, expression=1.0, pose=2.0).per_dim()
    assert weights.shape == (70,)
    assert (weights == 3.0).sum() == 18 and (weights == 2.0).sum() == 7 and (weights == 1.0).sum() == 45
    assert weights[6 * 3] == 3.0 and weights[0] == 1.0 and weights[69] == 2.0
