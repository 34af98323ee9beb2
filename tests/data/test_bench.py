"""``worldgen bench data`` runs end to end on a tiny setting and reports both rates (numbers are not asserted)."""
import pytest

pytest.importorskip("highway_env")


def test_bench_reports_sim_and_generator_rates():
    from worldgen.data.bench import main

    r = main(envs=("highway-fast-v0",), frames=4, episodes=1, size=(32, 64), max_workers=1)
    row = r["per_env"]["highway-fast-v0"]
    assert row["sim_step_render_fps"] > 0 and row["generator_fps"] > 0 and row["ratio"] > 0
    assert r["workers"]["1"]["frames"] == 4 and r["workers"]["1"]["speedup"] == 1.0
