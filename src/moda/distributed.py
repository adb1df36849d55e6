"""One command as several processes: under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment) or
with an explicit rank and world size.

Work is split by a stable assignment (item i of a sorted list goes to rank i mod world size), so a rerun with the
same world size gives every rank the same items and resumes where it stopped. Under torchrun the ranks form a
process group (NCCL on GPUs, gloo on CPUs) and results are gathered on rank 0; with an explicit rank and world
size (several independent launches, e.g. one per machine of a batch system) there is no group, and each rank
reports for itself.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .errors import MoDAError

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int
    world_size: int
    device: torch.device
    grouped: bool  # a process group joins the ranks (torchrun), so they can gather and synchronise

    @classmethod
    def from_env(cls, rank: int | None = None, world_size: int | None = None) -> World:
        """torchrun's environment, or the explicit `rank` of `world_size` independent processes, or rank 0 of 1.
        One GPU per rank where there are GPUs (LOCAL_RANK picks it), else the CPU."""
        torchrun = "RANK" in os.environ and "WORLD_SIZE" in os.environ
        if rank is not None or world_size is not None:
            if torchrun:
                raise MoDAError("--rank / --world-size are for independent launches; under torchrun leave them out")
            if rank is None or world_size is None or not 0 <= rank < world_size:
                raise MoDAError(f"--rank {rank} --world-size {world_size}: give both, with 0 <= rank < world size")
        else:
            rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        if torch.cuda.is_available():
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
            torch.cuda.set_device(device)
        else:
            device = torch.device("cpu")
        grouped = torchrun and world_size > 1
        if grouped and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(rank, world_size, device, grouped)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's items: every world_size-th, starting at its rank."""
        return list(items[self.rank :: self.world_size])

    def report_name(self, stem: str) -> str:
        """`stem.json` for the whole world (one process, or gathered on rank 0), else one per rank."""
        return f"{stem}.json" if self.grouped or self.world_size == 1 else \
            f"{stem}.rank-{self.rank}-of-{self.world_size}.json"

    def barrier(self) -> None:
        if self.grouped:
            dist.barrier()

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over the ranks."""
        if self.grouped:
            value = value.detach().clone()
            dist.all_reduce(value)
            value /= self.world_size
        return value.item()

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's `value` on rank 0, in rank order (None on the other ranks); without a group, [value]."""
        if not self.grouped:
            return [value]
        gathered: list[Any] = [None] * self.world_size if self.main else []
        dist.gather_object(value, gathered if self.main else None, dst=0)
        return gathered if self.main else None


def close_group() -> None:
    """Leave the process group at the end of a command (torchrun waits for every rank to do so)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _natural(key: str) -> list[int | str]:
    """Sort key that orders "row 10" after "row 9"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


@dataclass
class WorkReport:
    """What a share of a batch came to: items written, skipped (already done: a rerun resumes) and failed, each
    with the reason. Ranks' reports merge into one, in a stable order."""

    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def merged(cls, reports: list[WorkReport]) -> WorkReport:
        written = sorted((item for r in reports for item in r.written), key=_natural)
        skipped = sorted((item for r in reports for item in r.skipped), key=_natural)
        failed = dict(sorted(((k, v) for r in reports for k, v in r.failed.items()), key=lambda item: _natural(item[0])))
        return cls(written, skipped, failed)

    def summary(self) -> str:
        return f"{len(self.written)} written, {len(self.skipped)} already there, {len(self.failed)} failed"

    def to_json(self) -> str:
        return json.dumps({"written": self.written, "skipped": self.skipped, "failed": self.failed}, indent=2)


def gather_report(world: World, report: WorkReport, folder: Path, stem: str) -> WorkReport | None:
    """The ranks' reports merged on rank 0 and written to `folder` as JSON (`World.report_name(stem)`); None on
    the other ranks. Without a process group, each rank writes and returns its own."""
    reports = world.gather(report)
    if reports is None:
        return None
    merged = WorkReport.merged(reports)
    (folder / world.report_name(stem)).write_text(merged.to_json())
    return merged
