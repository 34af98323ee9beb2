"""Probabilistic dynamics ensemble (worldgen/rl/dynamics.py)."""
import numpy as np
import pytest
import torch

from worldgen.io import load_weights, save_weights
from worldgen.rl.dynamics import DynamicsConfig, EnsembleDynamics, LearnedDynamics, train_dynamics
from worldgen.rl.termination import get_termination_fn




def _linear_data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    a = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
    nxt = s + 0.1 * np.concatenate([a, a[:, :1]], axis=1) + 0.5  # a constant drift exercises the normaliser
    return {"observations": s, "actions": a, "next_observations": nxt.astype(np.float32),
            "rewards": (-s.sum(1) + 0.5 * a[:, 0] + 3.0).astype(np.float32), "terminals": np.zeros(n, np.float32)}


def _small(**kw):
    base = dict(ensemble_size=4, num_elites=2, hidden=[32, 32], max_epochs=30, batch_size=100, patience=5, lr=3e-3)
    base.update(kw)
    return DynamicsConfig(**base)


def test_shapes_bounds_and_members_differ():
    torch.manual_seed(0)
    model = EnsembleDynamics(_small(), obs_dim=3, act_dim=2)
    mean, logvar = model(torch.randn(6, 3), torch.randn(6, 2))
    assert mean.shape == logvar.shape == (4, 6, 4)
    assert (logvar <= model.max_logvar + 1e-5).all() and (logvar >= model.min_logvar - 1e-5).all()
    assert not torch.allclose(mean[0], mean[1])
    with pytest.raises(ValueError, match="num_elites"):
        EnsembleDynamics(_small(num_elites=5), 3, 2)


def test_training_fits_selects_elites_and_samples(tmp_path):
    torch.manual_seed(0)
    data = _linear_data()
    model = EnsembleDynamics(_small(), obs_dim=3, act_dim=2)
    logs = train_dynamics(model, data, seed=0, progress=False)
    mse = torch.tensor(logs["holdout_mse"])
    assert mse.max() < 0.1, logs  # normalised MSE: the members learned the dynamics
    assert logs["elites"] == torch.argsort(mse)[:2].tolist() == model.elites.tolist()
    term = get_termination_fn("halfcheetah")
    dyn = LearnedDynamics(model, term, seed=0)
    s, a = data["observations"][:100], data["actions"][:100]
    nxt, rew, done = dyn.step(s, a)
    assert nxt.shape == (100, 3) and rew.shape == (100,) and done.dtype == bool and not done.any()
    assert np.abs(nxt - data["next_observations"][:100]).mean() < 0.05
    assert np.abs(rew - data["rewards"][:100]).mean() < 0.3
    # rows only come from elites: zeroing the non-elite members' output layer changes nothing
    nxt_a = LearnedDynamics(model, term, seed=1).step(s, a)[0]
    others = [i for i in range(4) if i not in logs["elites"]]
    with torch.no_grad():
        model.net[-1].weight[others] += 100.0
    np.testing.assert_allclose(LearnedDynamics(model, term, seed=1).step(s, a)[0], nxt_a, atol=1e-5)
    # save/load keeps weights, normalisers and elites
    save_weights(tmp_path / "dyn.safetensors", model.state_dict())
    again = EnsembleDynamics(_small(), 3, 2)
    again.load_state_dict(load_weights(tmp_path / "dyn.safetensors"))
    np.testing.assert_allclose(LearnedDynamics(again, term, seed=1).step(s, a)[0], nxt_a, atol=1e-5)


def test_early_stopping_and_bootstrap():
    torch.manual_seed(0)
    model = EnsembleDynamics(_small(max_epochs=200, patience=2), 3, 2)
    logs = train_dynamics(model, _linear_data(300), seed=0, progress=False)
    assert logs["epochs"] < 200  # stopped by patience, not the cap
    with pytest.raises(ValueError, match="holdout"):
        train_dynamics(EnsembleDynamics(_small(), 3, 2), _linear_data(3), progress=False)
