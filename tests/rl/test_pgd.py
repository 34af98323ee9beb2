"""Policy-guided diffusion: trajectory representation, windows, normalisation, EDM constants, the guidance schedule
and its effect (up the policy's log-likelihood; coefficient 0 changes nothing)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from worldgen.data.offline_rl import make_dataset
from worldgen.diffusion.edm import edm_coeffs
from worldgen.rl.nets import ActorConfig, DeterministicActor, TanhGaussianActor
from worldgen.rl.pgd import (GuidanceConfig, Normalizer, PGDModelConfig, SamplerConfig, TrajectoryDiffusion,
                             decode_windows, episode_rows, guidance_weight, make_windows, mean_log_likelihood)
from worldgen.rl.unet1d import UNet1D, UNet1DConfig

OBS, ACT = 3, 2




def _dataset(lengths=(40, 12, 25), terminal=(False, True, False), seed=0):
    """Episodes whose observation column 0 holds the episode index, so a window crossing episodes is detectable."""
    rng = np.random.default_rng(seed)
    eps = []
    for i, (t, term) in enumerate(zip(lengths, terminal)):
        obs = rng.normal(size=(t + 1, OBS)).astype(np.float32)
        obs[:, 0] = i
        tt = np.zeros(t, bool)
        tt[-1] = term
        eps.append({"observations": obs[:-1], "next_observations": obs[1:],
                    "actions": rng.uniform(-0.95, 0.95, (t, ACT)).astype(np.float32),
                    "rewards": rng.normal(size=t).astype(np.float32), "terminals": tt, "timeouts": ~tt & (np.arange(t) == t - 1)})
    cat = {k: np.concatenate([e[k] for e in eps]) for k in eps[0]}
    return make_dataset(**cat)


def _model(horizon=16, n_steps=6, features=16, seed=0):
    torch.manual_seed(seed)
    cfg = PGDModelConfig(horizon=horizon, stride=4, unet=UNet1DConfig(features=features, n_blocks=2),
                         sampler=SamplerConfig(n_steps=n_steps))
    w = make_windows(_dataset(), horizon, 4)
    m = TrajectoryDiffusion(cfg, OBS, ACT, Normalizer.fit(w))
    # a non-trivial (random) denoiser: the zero-initialised output layer would make D(x) = c_skip x
    torch.nn.init.normal_(m.ema.net.out.weight, std=0.1)
    return m


def test_episode_rows_round_trip_through_decode():
    ds = _dataset(lengths=(9,), terminal=(True,))
    rows = episode_rows(next(ds.episodes()))
    assert rows.shape == (10, OBS + ACT + 2)
    back = decode_windows(rows[None], OBS, ACT)
    np.testing.assert_allclose(back.actions, ds.actions, atol=1e-5)  # arctanh then tanh
    np.testing.assert_allclose(back.next_observations, ds.next_observations, atol=1e-6)
    np.testing.assert_array_equal(back.terminals, ds.terminals)
    assert not back.timeouts.any()


def test_windows_never_cross_episodes_and_keep_the_last_row():
    ds = _dataset()
    w = make_windows(ds, 16, 8)
    assert w.shape[1:] == (16, OBS + ACT + 2)
    assert (w[:, :, 0] == w[:, :1, 0]).all()  # one episode index per window
    # episode 0: 41 rows -> starts 0, 8, 16, 24 and the tail window 25
    assert (w[:, 0, 0] == 0).sum() == 5
    # episode 1 (12 steps, terminated) is padded with its absorbing final row; episode 2 gives 26 rows -> 0, 8, 10
    ep1 = w[w[:, 0, 0] == 1]
    assert len(ep1) == 1 and (ep1[0, 12:, -1] == 1).all()
    assert (w[:, 0, 0] == 2).sum() == 3
    short_timeout = _dataset(lengths=(5, 30), terminal=(False, False))
    assert (make_windows(short_timeout, 16, 8)[:, 0, 0] == 0).sum() == 0  # too short and not terminated: skipped


def test_normalizer_round_trip_and_constant_dimensions():
    w = make_windows(_dataset(), 16, 4)
    n = Normalizer.fit(w)
    z = n.normalize(w)
    np.testing.assert_allclose(n.denormalize(z), w, atol=1e-5)
    flat = z.reshape(-1, z.shape[-1])
    np.testing.assert_allclose(flat[:, 1:].mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(flat[:, 1:-1].std(0), 1, atol=1e-3)
    const = np.ones((4, 5, 2), np.float32)
    assert (Normalizer.fit(const).std == 1).all()


def test_edm_preconditioning_with_sigma_data_one():
    m = _model()
    assert m.cfg.edm.sigma_data == 1.0 and m.denoiser.sigma_data == 1.0
    c_skip, c_out, c_in, c_noise = edm_coeffs(torch.tensor([1.0, 80.0]), 1.0)
    np.testing.assert_allclose(c_skip, [0.5, 1 / 6401], rtol=1e-6)
    np.testing.assert_allclose(c_out, [1 / math.sqrt(2), 80 / math.sqrt(6401)], rtol=1e-6)
    np.testing.assert_allclose(c_in, [1 / math.sqrt(2), 1 / math.sqrt(6401)], rtol=1e-6)
    np.testing.assert_allclose(c_noise, [0.0, math.log(80) / 4], rtol=1e-6)
    # the training denoiser's output layer starts at zero: D(x; sigma) = c_skip x
    x = torch.randn(2, 16, OBS + ACT + 2)
    torch.testing.assert_close(m.denoiser(x, torch.tensor(1.0)).detach(), 0.5 * x, atol=1e-6, rtol=0)


def test_unet_keeps_shape_for_odd_lengths():
    net = UNet1D(UNet1DConfig(channels=7, features=8, n_blocks=3))
    for t in (32, 7):
        assert net(torch.randn(2, t, 7), torch.randn(2)).shape == (2, t, 7)


def test_guidance_schedule_is_the_papers():
    n = 10
    assert guidance_weight(0, n, 2.0) == pytest.approx(2.0 * (1 + 0.3 * math.sin(math.pi / n)))
    assert guidance_weight(4, n, 2.0) == pytest.approx(2.0 * (0.6 + 0.3 * math.sin(math.pi * 5 / n)))
    assert guidance_weight(n - 1, n, 2.0) == 0.0  # never on the last step
    assert guidance_weight(3, n, 0.0) == 0.0
    assert guidance_weight(1, n, 1.0, delay_steps=2) == 0.0


@pytest.mark.parametrize("actor_cls", [TanhGaussianActor, DeterministicActor])
def test_one_guidance_step_raises_log_likelihood_and_moves_only_actions(actor_cls):
    m = _model()
    torch.manual_seed(1)
    pol = actor_cls(ActorConfig(OBS, ACT, [32, 32]))
    torch.nn.init.normal_(pol.net[-1].weight if actor_cls is DeterministicActor else pol.mu.weight, std=1.0)
    x = torch.randn(4, 16, OBS + ACT + 2) * 0.5
    hook = m.guidance_hook(pol, GuidanceConfig(coeff=0.05), m.sigmas())

    def ll(x):
        raw = m.denormalize(x)
        return pol.log_prob(raw[..., :OBS].reshape(-1, OBS), torch.tanh(raw[..., OBS:OBS + ACT]).reshape(-1, ACT)).sum()

    y = hook(x, 0, 10)
    assert ll(y) > ll(x)
    sl = m.act_slice
    torch.testing.assert_close(torch.cat([y[..., :sl.start], y[..., sl.stop:]], -1),
                               torch.cat([x[..., :sl.start], x[..., sl.stop:]], -1))
    # normalised gradient: each window's action channels move by exactly lambda_0
    step = (y - x)[..., sl].flatten(1).norm(dim=1)
    torch.testing.assert_close(step, torch.full((4,), guidance_weight(0, 10, 0.05)), rtol=1e-4, atol=1e-6)
    assert hook(x, 9, 10) is x  # last step: untouched


def test_zero_coefficient_changes_nothing_and_guidance_raises_likelihood():
    m = _model(n_steps=8)
    torch.manual_seed(2)
    pol = DeterministicActor(ActorConfig(OBS, ACT, [32, 32]))
    torch.nn.init.normal_(pol.net[-1].weight, std=1.0)
    plain = m.sample(16, seed=3)
    zero = m.sample(16, pol, GuidanceConfig(coeff=0.0), seed=3)
    assert torch.equal(plain, zero)
    guided = m.sample(16, pol, GuidanceConfig(coeff=2.0), seed=3)
    assert not torch.equal(plain, guided)
    ll = lambda x: mean_log_likelihood(pol, decode_windows(m.denormalize(x).numpy(), OBS, ACT))
    assert ll(guided) > ll(plain) + 0.05


def test_denoised_guidance_and_surrogate_run_and_are_seeded():
    m = _model(n_steps=5)
    pol = TanhGaussianActor(ActorConfig(OBS, ACT, [16]))
    g = GuidanceConfig(coeff=1.0, denoised=True, surrogate="deterministic")
    a, b = m.sample(3, pol, g, seed=0), m.sample(3, pol, g, seed=0)
    assert torch.equal(a, b) and torch.isfinite(a).all()
    with pytest.raises(ValueError, match="surrogate"):
        m.sample(2, pol, GuidanceConfig(coeff=1.0, surrogate="bogus"))


def test_decode_stops_at_the_first_done_and_flags_timeouts():
    h, d = 6, OBS + ACT + 2
    raw = np.zeros((2, h, d), np.float32)
    raw[:, :, 0] = np.arange(h)
    raw[0, 2, -1] = 0.9  # window 0: terminal at step 2
    ds = decode_windows(raw, OBS, ACT)
    assert ds.episode_bounds() == [(0, 3), (3, 8)]
    assert ds.terminals[2] and not ds.timeouts[2] and ds.timeouts[-1] and not ds.terminals[3:].any()
    np.testing.assert_array_equal(ds.next_observations[:3, 0], [1, 2, 3])


def test_loss_trains_down_on_a_fixed_batch():
    m = _model(features=16)
    x = torch.as_tensor(m.normalizer.normalize(make_windows(_dataset(), 16, 4)))[:16]
    opt = torch.optim.Adam(m.denoiser.parameters(), lr=3e-3)
    first = None
    for i in range(30):
        loss, logs = m.loss(x, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.7 * first and set(logs) >= {"loss", "mse_x0"}


@pytest.mark.parametrize("family", ["pgd", "agents"])
def test_every_shipped_config_loads(family):
    from pathlib import Path

    from worldgen.registry import load_experiment

    paths = sorted(Path("configs", family).glob("*.yaml"))
    assert paths
    for p in paths:
        cfg = load_experiment(p)
        assert cfg.task == ("pgd" if family == "pgd" else "agent")
