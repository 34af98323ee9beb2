import json

import pytest

from worldgen.cli import main as cli


@pytest.mark.slow  # benchmark, ~8 s
def test_bench_fvd_reports_overhead_and_memory_at_n_and_4n(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = cli(["bench", "fvd", "--n", "2", "--height", "32", "--width", "64", "--size", "32", "--batch-size", "2",
              "--repeats", "1", "--out", str(out)])
    res = json.loads(out.read_text())
    assert rc == 0 and '"bench": "fvd"' in capsys.readouterr().out
    assert res["raw_detector_s_per_video"] > 0 and res["evaluator_s_per_video"] > 0
    assert res["overhead"] > -1 and res["detector"]["comparable_to_published"] is False
    assert [m["videos"] for m in res["memory"]] == [2, 8] and [m["clips"] for m in res["memory"]] == [2, 8]
    assert res["peak_rss_ratio_4n_over_n"] > 0 and res["size"] == 32
