"""worldgen.rl.shards: the shard plan (sizes, per-shard seeds, rank assignment), rank detection, plan checks."""
import pytest

from worldgen.rl.shards import ShardPlan, detect_rank, read_plan, write_plan


def test_plan_covers_every_item_once_for_any_world_size():
    plan = ShardPlan(n_items=10, shard_size=3, seed=0)
    assert plan.n_shards == 4 and [plan.size_of(i) for i in range(4)] == [3, 3, 3, 1]
    for world in (1, 2, 3, 5):
        owned = [i for r in range(world) for i in plan.shards_of(r, world)]
        assert sorted(owned) == list(range(4))  # disjoint and complete
    seeds = [plan.seed_of(i) for i in range(4)]
    assert len(set(seeds)) == 4 and seeds == [ShardPlan(99, 3, 0).seed_of(i) for i in range(4)]
    assert ShardPlan(10, 3, 1).seed_of(0) != seeds[0]
    with pytest.raises(ValueError, match="n_items >= 1"):
        ShardPlan(0, 3, 0)


def test_detect_rank_sources():
    assert detect_rank(env={}) == (0, 1, "single")
    assert detect_rank(env={"RANK": "1", "WORLD_SIZE": "4"}) == (1, 4, "torchrun")
    slurm = {"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "3", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert detect_rank(env=slurm) == (2, 4, "slurm-array")
    assert detect_rank(2, 3, env={"RANK": "0", "WORLD_SIZE": "8"}) == (2, 3, "explicit")  # explicit wins
    with pytest.raises(ValueError, match="go together"):
        detect_rank(rank=1, env={})
    with pytest.raises(ValueError, match="0 <= rank < world_size"):
        detect_rank(env={"RANK": "4", "WORLD_SIZE": "4"})


def test_plan_file_roundtrip_and_conflict(tmp_path):
    plan = ShardPlan(8, 4, 1, {"coeff": 1.0, "ckpt": "a"})
    write_plan(tmp_path, plan)
    write_plan(tmp_path, ShardPlan(8, 4, 1, {"coeff": 1.0, "ckpt": "a"}))  # same settings: fine (every rank writes)
    assert read_plan(tmp_path) == plan
    with pytest.raises(ValueError, match="different settings \\(settings\\)"):
        write_plan(tmp_path, ShardPlan(8, 4, 1, {"coeff": 0.5, "ckpt": "a"}))
    with pytest.raises(FileNotFoundError, match="no shard plan"):
        read_plan(tmp_path / "nope")
