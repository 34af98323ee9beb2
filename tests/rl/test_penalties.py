"""MOPO and MOBILE penalties (worldgen.rl.penalties): zero when the members agree or the model is exact, growing with
the members' disagreement (or predicted noise), subtracted from model rewards only, and logged by the RAVL loop."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from worldgen.config import load
from worldgen.rl import pointmass as pm
from worldgen.rl.agents.sac_n import SACN, SACNConfig
from worldgen.rl.dynamics import DynamicsConfig, EnsembleDynamics, LearnedDynamics
from worldgen.rl.penalties import PenaltyConfig, batch_penalty, check_penalty, mobile_uncertainty, mopo_penalty
from worldgen.rl.ravl import PointMassTrueDynamics, RAVLConfig, train
from worldgen.rl.termination import get_termination_fn

TINY = Path(__file__).resolve().parents[2] / "configs" / "ravl" / "pointmass_tiny.yaml"


def _ensemble(spread: float, seed: int = 0) -> LearnedDynamics:
    """5 members, all copies of member 0, then each perturbed by ``spread`` x Gaussian noise."""
    torch.manual_seed(seed)
    ens = EnsembleDynamics(DynamicsConfig(ensemble_size=5, num_elites=5, hidden=[16, 16]), 2, 2)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in ens.net.named_parameters():
            p.copy_(p[:1].expand_as(p) + spread * torch.randn(p.shape, generator=g))
    return LearnedDynamics(ens, get_termination_fn("pointmass"), seed=0)


def _obs_act(n=64):
    rng = np.random.default_rng(0)
    return rng.uniform(-2, 2, (n, 2)).astype(np.float32), rng.uniform(-1, 1, (n, 2)).astype(np.float32)


def test_mopo_disagreement_is_zero_for_identical_members_and_grows_with_spread():
    obs, act = _obs_act()
    cfg = PenaltyConfig(kind="mopo", coef=2.0, mopo_uncertainty="disagreement")
    means = [float(mopo_penalty(_ensemble(s), obs, act, cfg).mean()) for s in (0.0, 0.01, 0.1)]
    assert means[0] == pytest.approx(0.0, abs=1e-6) and 1e-4 < means[1] < means[2]
    # coef scales it linearly; other kinds carry no MOPO penalty
    half = mopo_penalty(_ensemble(0.1), obs, act, PenaltyConfig("mopo", 1.0, "disagreement"))
    np.testing.assert_allclose(half.mean() * 2, means[2], rtol=1e-5)
    assert not mopo_penalty(_ensemble(0.1), obs, act, PenaltyConfig("mobile")).any()


def test_mopo_aleatoric_is_the_largest_predicted_std():
    obs, act = _obs_act(8)
    model = _ensemble(0.0)
    u = model.uncertainty(obs, act, "aleatoric")
    with torch.no_grad():
        _, logvar = model.model(torch.as_tensor(obs), torch.as_tensor(act))
    np.testing.assert_allclose(u, (0.5 * logvar).exp().norm(dim=-1).amax(0).numpy(), rtol=1e-5)
    with torch.no_grad():
        model.model.out_std.mul_(3.0)  # raw targets 3x wider: the raw std triples
    np.testing.assert_allclose(model.uncertainty(obs, act, "aleatoric"), 3 * u, rtol=1e-5)
    with pytest.raises(ValueError, match="aleatoric or disagreement"):
        model.uncertainty(obs, act, "epistemic")


def test_mobile_is_zero_for_identical_members_and_exact_models_and_grows_with_spread():
    obs, act = (torch.as_tensor(x) for x in _obs_act())
    torch.manual_seed(0)
    agent = SACN(SACNConfig(num_critics=2, eta=0.0, hidden=[16]), 2, 2)
    u = [float(mobile_uncertainty(agent, _ensemble(s), obs, act).mean()) for s in (0.0, 0.01, 0.1)]
    assert u[0] == pytest.approx(0.0, abs=1e-6) and u[0] < u[1] < u[2]
    exact = PointMassTrueDynamics(pm.PointMassConfig())
    assert (mobile_uncertainty(agent, exact, obs, act) == 0).all()
    assert not exact.uncertainty(obs.numpy(), act.numpy()).any()


def test_batch_penalty_only_on_model_rows_and_subtracted_in_the_target():
    obs, act = (torch.as_tensor(x) for x in _obs_act(6))
    torch.manual_seed(0)
    agent = SACN(SACNConfig(num_critics=2, eta=0.0, hidden=[16]), 2, 2)
    batch = {"observations": obs, "actions": act, "rewards": torch.zeros(6), "next_observations": obs,
             "terminals": torch.zeros(6), "from_model": torch.tensor([0, 0, 1, 1, 1, 1.0]), "penalty": torch.zeros(6)}
    pen = batch_penalty(agent, _ensemble(0.1), batch, PenaltyConfig("mobile", coef=1.0))
    assert (pen[:2] == 0).all() and (pen[2:] > 0).all()
    assert batch_penalty(agent, _ensemble(0.1), batch, PenaltyConfig("none")) is None
    torch.manual_seed(3)
    plain = agent.target_q(batch)
    torch.manual_seed(3)  # same next-action draw
    penalised = agent.target_q({**batch, "penalty": pen})
    torch.testing.assert_close(plain - penalised, pen)
    with pytest.raises(ValueError, match="penalty.kind"):
        check_penalty(PenaltyConfig("mopx"))


SMALL = ["epochs=1", "steps_per_epoch=6", "eval_episodes=1", "dynamics.max_epochs=2", "q_eval_states=16"]


@pytest.mark.parametrize("kind", ["mopo", "mobile"])
def test_penalty_is_positive_on_the_learned_model_and_zero_under_true_dynamics(tmp_path, kind):
    over = [*SMALL, f"penalty.kind={kind}", "agent.num_critics=2", "agent.eta=0"]
    learned = train(load(RAVLConfig, TINY, [*over, f"out_dir={tmp_path / 'l'}"]), progress=False)[-1]
    exact = train(load(RAVLConfig, TINY, [*over, "true_dynamics=true", f"out_dir={tmp_path / 't'}"]),
                  progress=False)[-1]
    assert learned["penalty"] > 0 and math.isfinite(learned["q_mean"])
    assert exact["penalty"] == 0.0
