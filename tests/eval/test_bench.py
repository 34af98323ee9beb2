from worldgen.eval.bench import main


def test_bench_fvd_reports_overhead_and_memory_at_n_and_4n(capsys):
    res = main({"n": 2, "frames": 16, "height": 32, "width": 64, "size": 32, "detector": "random",
                "batch_size": 2, "device": "cpu", "repeats": 1, "out": None, "_handler": lambda a: a})
    assert res["raw_detector_s_per_video"] > 0 and res["evaluator_s_per_video"] > 0
    assert res["overhead"] > -1 and res["detector"]["comparable_to_published"] is False
    assert [m["videos"] for m in res["memory"]] == [2, 8] and [m["clips"] for m in res["memory"]] == [2, 8]
    assert res["peak_rss_ratio_4n_over_n"] > 0
    assert '"bench": "fvd"' in capsys.readouterr().out
