"""tools/artv_ablation_summary.py (mean ± std over seeds per variant and window) and tools/artv_sampler_check.py's
settings parser."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(variant, mse, veh):
    windows = [{"start": s, "end": s + 16, "mse": m, "mse_copy_first": 0.2, "mse_mean_colour": 0.1,
                "vehicle_ratio": veh, "hf_ratio": 1.0} for s, m in zip((0, 16), mse)]
    return {"models": {variant: {"windows": windows, "one_step_mse": mse[0], "one_step_mse_copy_last": 0.05}}}


def test_ablation_summary_means_and_spread(tmp_path, capsys):
    summ = _tool("artv_ablation_summary")
    for seed, (m, v) in enumerate([((0.1, 0.3), 1.0), ((0.3, 0.1), 3.0)]):
        (tmp_path / f"full-s{seed}.quality.json").write_text(json.dumps(_record("full", m, v)))
    (tmp_path / "plain-s0.quality.json").write_text(json.dumps(_record("plain", (0.1, 0.1), 1.0)))
    (tmp_path / "other-s0.quality.json").write_text("{}")  # not a variant: ignored
    assert summ.main([str(tmp_path), "--out", str(tmp_path / "a.png")]) == 0
    out = json.loads((tmp_path / "a.json").read_text())
    assert out["full"]["seeds"] == [0, 1] and out["full"]["mse"]["mean"] == pytest.approx([0.2, 0.2])
    assert out["full"]["mse"]["std"] == pytest.approx([0.1, 0.1]) and out["full"]["vehicle_ratio"]["mean"] == [2.0, 2.0]
    assert out["plain"]["beats_copy_first_every_window_after_first"] == [True]
    assert out["full"]["beats_copy_first_every_window_after_first"] == [False, True]
    assert "+ mask + anchor + noise aug" in capsys.readouterr().out and (tmp_path / "a.png").is_file()
    assert summ.main([str(tmp_path / "empty")]) == 2


def test_sampler_check_parses_settings_without_eval():
    parse = _tool("artv_sampler_check").parse_settings
    assert parse("steps=6; steps=8,sigma_max=10.0,sampler=euler") == [{"steps": 6},
                                                                       {"steps": 8, "sigma_max": 10.0, "sampler": "euler"}]
    assert parse("__import__('os')=1") == [{"__import__('os')": 1}]  # keys are never evaluated
