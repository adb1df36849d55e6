import pytest

from moda.distributed import World
from moda.errors import MoDAError


def test_explicit_ranks_share_items_by_a_stable_assignment(monkeypatch):
    for variable in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(variable, raising=False)
    items = [f"video{i}" for i in range(7)]
    worlds = [World.from_env(rank, 3) for rank in range(3)]
    shares = [world.share(items) for world in worlds]
    assert shares == [["video0", "video3", "video6"], ["video1", "video4"], ["video2", "video5"]]
    assert sorted(sum(shares, [])) == items  # every item once
    assert not any(world.grouped for world in worlds) and worlds[0].main and not worlds[1].main
    assert worlds[1].gather("mine") == ["mine"]  # without a process group each rank reports for itself
    assert worlds[1].report_name("report") == "report.rank-1-of-3.json"
    single = World.from_env()
    assert (single.rank, single.world_size, single.share(items)) == (0, 1, items)
    assert single.report_name("report") == "report.json"


@pytest.mark.parametrize("rank,world_size", [(2, 2), (-1, 2), (0, None), (None, 3)])
def test_bad_ranks_are_one_line_errors(monkeypatch, rank, world_size):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(MoDAError, match="--rank"):
        World.from_env(rank, world_size)


def test_explicit_ranks_under_torchrun_are_refused(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(MoDAError, match="under torchrun leave them out"):
        World.from_env(0, 2)
