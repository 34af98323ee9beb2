"""``worldgen data rl-card``: the card of a folder of offline-RL datasets (worldgen.eval.datacard)."""
import json

import numpy as np
import pytest

from worldgen.cli import main as cli_main
from worldgen.data.offline_rl import D4RL_REF_RETURNS, DatasetError, make_dataset, save_dataset
from worldgen.eval.datacard import make_card
from worldgen.rl.collect import BehaviourConfig, main as collect_main
from worldgen.rl.envs import CHEAP_ENV

CURVE = [[10000, 300.0], [20000, 1100.0], [30000, 3100.0]]


def _hopper_file(path, kind, episode_returns, length=10, terminal_last=True):
    """A Hopper-shaped file whose episodes have the given returns (reward spread evenly over the steps)."""
    eps = []
    for r in episode_returns:
        term = np.zeros(length, bool)
        tout = np.zeros(length, bool)
        (term if terminal_last else tout)[-1] = True
        eps.append(dict(observations=np.zeros((length, 11)), actions=np.zeros((length, 3)),
                        rewards=np.full(length, r / length), next_observations=np.zeros((length, 11)),
                        terminals=term, timeouts=tout))
    cat = {k: np.concatenate([e[k] for e in eps]) for k in eps[0]}
    meta = {"env_id": "Hopper-v5", "kind": kind, "behaviour": "SAC-N (N=2, eta=0)", "behaviour_train_steps": 30000,
            "checkpoint_returns": CURVE, "medium_checkpoint_step": 20000, "medium_checkpoint_return": 1100.0,
            "expert_checkpoint_step": 30000, "ref_min_score": 20.0, "ref_max_score": 3100.0}
    save_dataset(path, make_dataset(metadata=meta, **cat))


def test_card_reports_returns_normalised_scores_and_the_recipe_checks(tmp_path):
    _hopper_file(tmp_path / "medium.hdf5", "medium", [1000.0, 1200.0])
    _hopper_file(tmp_path / "expert.hdf5", "expert", [3000.0, 3200.0, 3400.0], terminal_last=False)
    _hopper_file(tmp_path / "random.hdf5", "random", [10.0, 30.0, 20.0, 20.0], length=4)
    card = make_card(tmp_path)
    rows = {r["kind"]: r for r in card["datasets"]}
    assert [r["kind"] for r in card["datasets"]] == ["random", "medium", "expert"]  # recipe order, not file order
    lo, hi = D4RL_REF_RETURNS["hopper"]
    assert rows["medium"]["episodes"] == 2 and rows["medium"]["transitions"] == 20
    assert rows["medium"]["return_mean"] == pytest.approx(1100.0, rel=1e-5)
    assert rows["medium"]["normalised_mean"] == pytest.approx(100 * (1100 - lo) / (hi - lo), rel=1e-5)
    assert rows["expert"]["return_std"] == pytest.approx(np.std([3000, 3200, 3400]), rel=1e-4)
    assert rows["expert"]["terminal_fraction"] == 0.0 and rows["medium"]["terminal_fraction"] == pytest.approx(0.1)
    assert rows["random"]["episode_length_mean"] == 4
    b = card["behaviour"]
    assert b["expert_normalised"] == pytest.approx(100 * (3100 - lo) / (hi - lo), rel=1e-5)
    assert b["expert_converged"] is True  # 95.9 >= 90
    assert b["medium_to_expert"] == pytest.approx(1100 / 3100)
    assert b["best_step"] == 30000
    for name in ("card.json", "CARD.md", "card.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert json.loads((tmp_path / "card.json").read_text())["datasets"][1]["kind"] == "medium"
    md = (tmp_path / "CARD.md").read_text()
    assert "| medium.hdf5 | medium | 20 | 2 |" in md and "at D4RL's expert level" in md


def test_card_flags_an_unconverged_expert(tmp_path):
    _hopper_file(tmp_path / "expert.hdf5", "expert", [400.0])
    card = make_card(tmp_path)  # the metadata's expert (3100) is fine; lower it
    assert card["behaviour"]["expert_converged"] is True
    import h5py

    with h5py.File(tmp_path / "expert.hdf5", "a") as f:
        f.attrs["ref_max_score"] = 480.0
    card = make_card(tmp_path)
    assert card["behaviour"]["expert_converged"] is False
    assert "BELOW D4RL's expert level" in (tmp_path / "CARD.md").read_text()


def test_card_refuses_bad_folders_and_writes_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="no .hdf5"):
        make_card(tmp_path)
    _hopper_file(tmp_path / "medium.hdf5", "medium", [1000.0])
    (tmp_path / "broken.hdf5").write_bytes(b"not an hdf5 file")
    with pytest.raises(DatasetError, match="broken.hdf5"):
        make_card(tmp_path)
    assert not (tmp_path / "card.json").exists() and not (tmp_path / "CARD.md").exists()


def test_rl_card_command_on_collected_data(tmp_path, capsys):
    """End to end on the cheap environment: a tiny behaviour run, two kinds, then the card from the command line."""
    cfg = BehaviourConfig(train_steps=300, start_steps=50, batch_size=16, hidden=[8], eval_every=100,
                          eval_episodes=1)
    for kind in ("random", "medium"):
        collect_main(CHEAP_ENV, kind, tmp_path / f"{kind}.hdf5", steps=400, behaviour=cfg,
                     behaviour_dir=tmp_path / "beh")
    assert cli_main(["data", "rl-card", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["env_id"] == CHEAP_ENV and [r["kind"] for r in out["datasets"]] == ["random", "medium"]
    assert out["datasets"][0]["transitions"] == 400
    assert len(out["behaviour"]["curve"]) == 3  # checkpoints at 100, 200, 300 steps
    assert out["datasets"][1]["reference_returns"] is not None  # self-calibrated (Pendulum is not a D4RL task)
