"""Result summaries of tools/: the anti-drift ablation on the sim-detector FVD curve (drift_ablation_summary.py
--fvd, issue 14) and the offline agents on real / unguided / PGD data (pgd_agents_summary.py, issue 17)."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def summ():
    spec = importlib.util.spec_from_file_location("drift_ablation_summary", ROOT / "tools" / "drift_ablation_summary.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(fvd, floor=15.0):
    """The parts of a `worldgen eval drivingworld` record the summary reads."""
    wins = [{"start": 40 * i, "end": 40 * i + 40, "vehicle_ratio": 1.0 + 0.1 * i, "code_js_bits": 0.2 + 0.01 * i}
            for i in range(len(fvd))]
    return {"rollout": {"windows": wins},
            "fvd": {"real_floor": floor, "clips_per_window": 20,
                    "windows": [{"start": 40 * i, "fvd": f} for i, f in enumerate(fvd)]}}


def test_fvd_summary_ratios_against_none_are_seed_paired(summ, tmp_path, capsys):
    for seed, (base, mask) in enumerate([((50.0, 100.0), (50.0, 60.0)), ((40.0, 200.0), (45.0, 100.0))]):
        (tmp_path / f"none-s{seed}.json").write_text(json.dumps(_record(base)))
        (tmp_path / f"masking-s{seed}.json").write_text(json.dumps(_record(mask)))
    (tmp_path / "masking-s2.json").write_text(json.dumps(_record((1.0, 1.0))))  # no none-s2: not in the ratio
    (tmp_path / "none-s0.drift.json").write_text("{}")  # a `worldgen eval drift` record: not read here
    (tmp_path / "other-s0.json").write_text("{}")  # not a variant: ignored
    out = tmp_path / "fvd.png"
    assert summ.main([str(tmp_path), "--fvd", "--out", str(out), "--json", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["none"]["fvd"]["mean"] == [45.0, 150.0]
    assert s["masking"]["seeds"] == [0, 1, 2]
    r = s["masking"]["last_fvd_vs_none"]
    assert r["seeds"] == [0, 1]
    assert r["ratio_of_means"] == pytest.approx(160.0 / 300.0)
    assert r["ratio_mean"] == pytest.approx((0.6 + 0.5) / 2)
    assert r["ratio_std"] == pytest.approx(0.05)
    assert s["none"]["last_fvd_vs_none"]["ratio_of_means"] == pytest.approx(1.0)
    assert s["none"]["real_floor"] == 15.0
    assert s["none"]["fvd_rise"] == {"mean": 105.0, "std": 55.0}  # seed 0: +50, seed 1: +160
    assert s["none"]["fvd_after_first"] == {"mean": 150.0, "std": 50.0}
    assert out.stat().st_size > 1000
    table = capsys.readouterr().out
    assert "| masking | 3 |" in table and "0.53 (0.55 ± 0.05)" in table


def test_fvd_summary_refuses_records_without_fvd(summ, tmp_path, capsys):
    rec = _record((1.0,))
    del rec["fvd"]
    (tmp_path / "none-s0.json").write_text(json.dumps(rec))
    with pytest.raises(ValueError, match="no FVD"):
        summ.main([str(tmp_path), "--fvd"])
    (tmp_path / "empty").mkdir()
    assert summ.main([str(tmp_path / "empty"), "--fvd"]) == 1
    assert "no <variant>-s<seed>.json" in capsys.readouterr().err


def test_pgd_agents_summary_compares_pgd_seed_by_seed(tmp_path, capsys):
    """tools/pgd_agents_summary.py (issue 17's agent comparison): mean ± std over seeds and the paired PGD gain."""
    spec = importlib.util.spec_from_file_location("pgd_agents_summary", ROOT / "tools" / "pgd_agents_summary.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    returns = {"real": (100.0, 120.0), "unguided": (90.0, 150.0), "pgd": (110.0, 130.0)}
    for mode, rets in returns.items():
        for seed, r in enumerate(rets):
            run = tmp_path / f"iql-{mode}-s{seed}"
            run.mkdir()
            hist = [{"step": 10, "return_mean": r / 2, "normalized_score": r / 20},
                    {"step": 20, "return_mean": r, "normalized_score": r / 10}]
            synth = [{"step": 0, "target_log_likelihood": -3.0}] if mode != "real" else []
            (run / "eval.json").write_text(json.dumps({"env_id": "Hopper-v5", "history": hist, "synthetic": synth}))
    (tmp_path / "notes").mkdir()  # not a run folder: ignored
    assert mod.main([str(tmp_path), "--json", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())["iql"]
    last = s["real"]["steps"][-1]
    assert last["step"] == 20 and last["return_mean"] == 110.0 and last["return_std"] == 10.0
    assert last["normalized_mean"] == pytest.approx(11.0)
    assert s["pgd"]["vs_real"] == {"step": 20, "seeds": [0, 1], "pgd_higher_in": 2, "mean_gain": 10.0}
    assert s["pgd"]["vs_unguided"]["pgd_higher_in"] == 1 and s["pgd"]["vs_unguided"]["mean_gain"] == 0.0
    assert s["unguided"]["synthetic_target_log_likelihood"] == {"0": [-3.0], "1": [-3.0]}
    assert "higher in 2 of 2 seeds" in capsys.readouterr().out
    assert mod.main([str(tmp_path / "notes")]) == 1
