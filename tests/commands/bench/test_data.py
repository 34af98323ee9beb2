"""``worldgen bench data`` runs end to end on a tiny setting and reports both rates (numbers are not asserted)."""
import pytest

pytest.importorskip("highway_env")


def test_bench_reports_sim_and_generator_rates(tmp_path):
    from worldgen.commands.bench.data import DataBenchConfig, main

    out = tmp_path / "bench.json"
    r = main(DataBenchConfig(envs=("highway-fast-v0",), frames=4, episodes=1, size=(32, 64), max_workers=1, out=str(out)))
    row = r["per_env"]["highway-fast-v0"]
    assert row["sim_step_render_fps"] > 0 and row["generator_fps"] > 0 and row["ratio"] > 0
    assert r["workers"]["1"]["frames"] == 4 and r["workers"]["1"]["speedup"] == 1.0
    assert out.is_file()


def test_unknown_env_is_refused():
    from worldgen.commands.bench.data import DataBenchConfig, main

    with pytest.raises(ValueError, match="unknown env"):
        main(DataBenchConfig(envs=("nope-v0",)))
