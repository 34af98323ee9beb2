"""``worldgen eval fvd|tokenizer|drift|artv|offline-rl``: every ``<leaf>_main(cfg)`` runs from its dataclass on
tiny seeded-random models; every leaf's ``--help`` works; bad ``NAME=PATH`` arguments are clean errors."""
import json

import numpy as np
import pytest

from worldgen.cli import main as cli
from worldgen.commands import eval as E


@pytest.mark.parametrize("leaf", ["fvd", "tokenizer", "drift", "artv", "offline-rl"])
def test_help(leaf, capsys):
    with pytest.raises(SystemExit) as e:
        cli(["eval", leaf, "--help"])
    assert e.value.code == 0 and "usage: worldgen eval " + leaf in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Fréchet distance")
def test_fvd_main(episodes, tmp_path):
    res = E.fvd_main(E.FVDConfig(real=str(episodes), fake=str(episodes), out=str(tmp_path / "f.json"), size=32,
                                 detector="random", offsets="start", command="test"))
    assert res["n_real"] == res["n_fake"] == 3 and np.isfinite(res["fvd"])
    assert json.loads((tmp_path / "f.json").read_text())["command"] == "test"


def test_tokenizer_main(episodes, tokenizer_dir, tmp_path):
    res = E.tokenizer_main(E.TokenizerEvalConfig(tokenizer=str(tokenizer_dir), data=str(episodes), split="all",
                                                 chunk=4, progress=False))
    assert res["episodes"] == 3 and res["frames"] == 48 and res["psnr_db"] > 0
    assert {"precision", "recall", "f1"} <= set(res["foreground"]) and "f1" in res["vehicles"]


def test_drift_main(gpt_run, tmp_path):
    run, tokens = gpt_run
    res = E.drift_main(E.DriftEvalConfig(ckpt=str(run), tokens=str(tokens), n_val=1, horizon=4, window=2,
                                         out=str(tmp_path / "d.json")))
    assert [w["start"] for w in res["windows"]] == [0, 2] and 0 <= res["windows"][0]["token_acc"] <= 1
    assert json.loads((tmp_path / "d.json").read_text())["windows"] == res["windows"]


@pytest.mark.filterwarnings("ignore:Fréchet distance")
def test_artv_main(artv_dir, episodes, tmp_path):
    cfg = E.ARTVEvalConfig(ckpts={"a": str(artv_dir)}, out=str(tmp_path / "a.json"), data=str(episodes), horizon=16,
                           steps=1, fvd_size=32, ref_clips=2)
    res = E.artv_main(cfg)
    model = res["models"][0]
    assert model["name"] == "a" and model["window_starts"] == [0] and len(model["mse_per_window"]) == 1
    assert len(model["fvd_per_window"]) == 1
    assert json.loads((tmp_path / "a.json").read_text())["models"][0]["episodes"] == model["episodes"]


def test_offline_rl_main(offline, tmp_path):
    from worldgen.commands.pgd import SampleConfig, sample_main

    syn = tmp_path / "syn.hdf5"
    sample_main(SampleConfig(ckpt=str(offline["pgd"]), out=str(syn), n_traj=2, policy=str(offline["policy"]),
                             coeff=1.0))
    res = E.offline_rl_main(E.OfflineRLEvalConfig(env=offline["env"], real=str(offline["real"]),
                                                  policy=str(offline["policy"]), synthetic={"pgd": str(syn)},
                                                  max_transitions=10))
    assert res["results"]["pgd"]["dynamics_mse"] >= 0 and np.isfinite(res["results"]["pgd"]["target_log_likelihood"])


def test_named_paths_are_checked(capsys):
    assert cli(["eval", "artv", "--ckpt", "no-equals-sign", "--out", "x.json"]) == 2
    assert "NAME=PATH" in capsys.readouterr().err


def test_drift_main_scores_pixels_decoded_with_past_codes(tokenizer_dir, tmp_path):
    import torch

    from tests.commands.conftest import save_run
    from tests.worldmodel.conftest import tiny_config
    from worldgen.data.tokens import make_synthetic_shards
    from worldgen.lit.worldmodel import Config
    from worldgen.tokenizer import load_tokenizer
    from worldgen.worldmodel.drift_eval import _decode
    from worldgen.worldmodel.model import DrivingWorldGPT

    tokens = make_synthetic_shards(tmp_path / "tokens", n_episodes=2, n_frames=12, grid=(4, 8), codebook_size=64)
    gpt_cfg = tiny_config(grid=[4, 8], codebook_size=64)
    torch.manual_seed(0)
    run = save_run(tmp_path / "run", Config(model=gpt_cfg), DrivingWorldGPT(gpt_cfg))
    res = E.drift_main(E.DriftEvalConfig(ckpt=str(run), tokens=str(tokens), tokenizer=str(tokenizer_dir), n_val=1,
                                         window=3))
    assert all(np.isfinite(w["psnr"]) for w in res["windows"])
    tok = load_tokenizer(tokenizer_dir)
    codes = torch.randint(0, 64, (1, 9, 4, 8), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(_decode(tok, codes, chunk=4), tok.decode(codes))  # chunked with past == one pass
