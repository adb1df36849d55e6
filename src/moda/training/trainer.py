"""Flow-matching training of the motion generator: AdamW, EMA, bf16 autocast, gradient clipping,
TensorBoard, atomic resumable checkpoints, and DDP through torchrun (gloo on CPUs, NCCL on GPUs).

Determinism: every random draw of step s on rank r (window choice, noise level, noise, condition dropout)
comes from a generator seeded by (seed, s, r). A run killed and resumed from its last checkpoint therefore
continues with the same batches and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import cast

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from ..distributed import World, close_group
from ..errors import MoDAError
from ..generator.model import MotionGenerator
from ..generator.objective import TrainingBatch, flow_matching_loss
from ..motion.stats import MotionStats
from ..shards import shard_paths
from .config import TrainConfig
from .windows import WindowSampler, corpus_stats

CHECKPOINTS = "checkpoints"
LATEST = "latest"
EXPORT = "generator.safetensors"


class TrainableGenerator(nn.Module):
    """The generator plus a learnable null audio feature (the reference learns it as a parameter too)."""

    def __init__(self, generator: MotionGenerator):
        super().__init__()
        self.generator = generator
        config = generator.config
        self.null_audio_feat = nn.Parameter(torch.randn(1, 1, 1, 1, config.audio_dim))

    def forward(self, batch: TrainingBatch, rng: torch.Generator, config: TrainConfig) -> dict[str, torch.Tensor]:
        return flow_matching_loss(self.generator, batch, config.dropout, rng, config.loss,
                                  config.timestep_distribution, null_audio=self.null_audio_feat)

    def release_state(self) -> dict[str, torch.Tensor]:
        """Released checkpoint layout (`talking_head_dit.*`, `scheduler.sigmas`) plus the null audio feature."""
        state = {k: v.detach().float().contiguous() for k, v in self.generator.state_dict().items()}
        state["null_audio_feat"] = self.null_audio_feat.detach().float().contiguous()
        return state


def step_rng(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step * 7_919 + rank * 104_729) % (2**63))


def _write_json_atomic(path: Path, value: object) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(temporary, path)


class Trainer:
    def __init__(self, config: TrainConfig, progress: bool = True):
        self.config = config
        self.dist = World.from_env()
        self.output = Path(config.output)
        self.progress = progress and self.dist.main
        torch.manual_seed(config.seed)  # the same initial weights on every rank
        self.model = TrainableGenerator(MotionGenerator(config.model)).to(self.dist.device)
        self.model.train()
        paths = shard_paths(config.shards)
        self.stats = self._stats(paths)
        self.sampler = WindowSampler(paths, self.stats, config.model.seq_len, config.model.audio_unit_len,
                                     config.rest_prompt_share)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.learning_rate, betas=config.betas,
                                           weight_decay=config.weight_decay)
        warmup = max(config.warmup_steps, 1)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda step: min(1.0, (step + 1) / warmup))
        self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
        self.step = 0
        self.network = (DistributedDataParallel(self.model) if self.dist.grouped else self.model)

    def _stats(self, paths: list[Path]) -> MotionStats:
        """Corpus statistics, computed once and kept with the run (a resumed run reuses them)."""
        path = self.output / "stats.safetensors"
        if self.dist.main:
            self.output.mkdir(parents=True, exist_ok=True)
            if not path.is_file():
                stats = corpus_stats(paths)
                save_file({"mean": stats.mean, "std": stats.std}, path)
        self.dist.barrier()
        return MotionStats.load(path)

    # -- checkpoints -------------------------------------------------------------------------------

    def _checkpoint_dir(self, step: int) -> Path:
        return self.output / CHECKPOINTS / f"step_{step:08d}"

    def save_checkpoint(self) -> Path:
        """Write model, EMA, optimizer and schedule state into a temporary folder, then rename it into place."""
        folder = self.output / CHECKPOINTS
        folder.mkdir(parents=True, exist_ok=True)
        target = self._checkpoint_dir(self.step)
        temporary = Path(tempfile.mkdtemp(dir=folder, prefix=".partial-"))
        save_file({k: v.detach().contiguous() for k, v in self.model.state_dict().items()}, temporary / "model.safetensors")
        save_file({k: v.detach().contiguous() for k, v in self.ema.state_dict().items()}, temporary / "ema.safetensors")
        torch.save({"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(), "step": self.step},
                   temporary / "state.pt")
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporary, target)
        _write_json_atomic(folder / LATEST, {"step": self.step, "folder": target.name})
        for old in sorted(folder.glob("step_*"))[: -self.config.keep_checkpoints]:
            shutil.rmtree(old)
        return target

    def load_latest(self) -> bool:
        """Restore the newest complete checkpoint (folders a killed run left half-written are removed)."""
        if self.dist.main:
            for stale in (self.output / CHECKPOINTS).glob(".partial-*"):
                shutil.rmtree(stale, ignore_errors=True)
        pointer = self.output / CHECKPOINTS / LATEST
        if not pointer.is_file():
            return False
        folder = self.output / CHECKPOINTS / json.loads(pointer.read_text())["folder"]
        device = self.dist.device
        self.model.load_state_dict(load_file(folder / "model.safetensors", device=str(device)))
        self.ema.load_state_dict(load_file(folder / "ema.safetensors", device=str(device)))
        state = torch.load(folder / "state.pt", map_location=device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.step = state["step"]
        return True

    def export(self) -> Path:
        """The EMA generator in the released layout, with its config and motion statistics beside it."""
        path = self.output / EXPORT
        handle, temporary = tempfile.mkstemp(dir=self.output, prefix=".generator.", suffix=".safetensors")
        os.close(handle)
        released = cast(TrainableGenerator, self.ema.module).release_state()
        save_file(released, temporary)
        os.replace(temporary, path)
        _write_json_atomic(self.output / "generator.json", {"model": self.config.model.to_dict()})
        return path

    # -- the loop -------------------------------------------------------------------------------------

    def _log(self, writer, record: dict) -> None:
        with open(self.output / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        for key, value in record.items():
            if key != "step":
                writer.add_scalar(f"train/{key}", value, record["step"])

    def _truncate_metrics(self) -> None:
        """After a resume, drop log lines written after the checkpoint (the killed run's last steps)."""
        path = self.output / "metrics.jsonl"
        if path.is_file():
            kept = [line for line in path.read_text().splitlines() if json.loads(line)["step"] <= self.step]
            path.write_text("".join(line + "\n" for line in kept))

    def run(self, resume: bool = True) -> Path:
        config = self.config
        if resume and self.load_latest() and self.dist.main:
            self._truncate_metrics()
        writer = None
        if self.dist.main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(self.output / "tensorboard"))
            _write_json_atomic(self.output / "config.json", config.to_dict())
        autocast = torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=config.bf16)
        bar = tqdm(total=config.steps, initial=self.step, desc="train", unit="step", disable=not self.progress)
        while self.step < config.steps:
            rng = step_rng(config.seed, self.step, self.dist.rank)
            batch = self.sampler.batch(config.batch_size, rng).to(self.dist.device)
            with autocast:
                terms = self.network(batch, rng, config)
            self.optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
            if not torch.isfinite(grad_norm):
                raise MoDAError(f"non-finite gradient at step {self.step}; lower the learning rate or check the data")
            self.optimizer.step()
            self.schedule.step()
            self.ema.update_parameters(self.model)
            self.step += 1
            bar.update(1)
            if self.step % config.log_every == 0 or self.step == config.steps:
                record = {"step": self.step, **{k: self.dist.mean(v.float()) for k, v in terms.items()},
                          "grad_norm": grad_norm.item(), "lr": self.schedule.get_last_lr()[0],
                          "world_size": self.dist.world_size}
                if writer is not None:
                    self._log(writer, record)
                    bar.set_postfix(loss=f"{record['loss']:.4f}")
            if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                if self.dist.main:
                    self.save_checkpoint()
                self.dist.barrier()
        bar.close()
        if writer is not None:
            writer.close()
        exported = self.export() if self.dist.main else self.output / EXPORT
        self.dist.barrier()
        return exported


def train(config: TrainConfig, resume: bool = True, progress: bool = True) -> Path:
    trainer = Trainer(config, progress)
    try:
        return trainer.run(resume)
    finally:
        close_group()
