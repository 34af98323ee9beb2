"""Invariants of the diffusion core: schedules, noising vs sampler steps, seeds, EDM constants, guidance hooks."""
import math

import pytest
import torch

from worldgen.diffusion import edm, guidance, objectives, samplers, schedules


def test_schedules_shapes_and_endpoints():
    b = schedules.linear_betas(1000)
    assert b[0].item() == pytest.approx(1e-4) and b[-1].item() == pytest.approx(0.02)
    for kind in ("linear", "cosine"):
        ab = schedules.make_alpha_bars(kind, 1000)
        assert ab.shape == (1000,) and (ab[1:] < ab[:-1]).all() and ab[-1] < 1e-3 and ab[0] > 0.99
    s = schedules.karras_sigmas(10, 0.002, 80, 7)
    assert len(s) == 11 and s[0] == pytest.approx(80) and s[9] == pytest.approx(0.002) and s[10] == 0
    assert (s[1:] < s[:-1]).all()
    ab = schedules.make_alpha_bars("cosine", 100)
    torch.testing.assert_close(schedules.sigma_to_abar(schedules.abar_to_sigma(ab)), ab)
    with pytest.raises(ValueError, match="unknown schedule"):
        schedules.make_alpha_bars("quadratic")


def test_ddim_step_with_true_x0_reproduces_noising():
    """x_t = q_sample(x0, t, eps); a deterministic DDIM step with the true x0 lands on q_sample(x0, t', eps)."""
    ab = schedules.make_alpha_bars("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 3, 5, generator=g), torch.randn(4, 3, 5, generator=g)
    t, t_prev = torch.full((4,), 700), torch.full((4,), 300)
    x_t = schedules.q_sample(x0, t, eps, ab)
    out = samplers.ddim_step(x_t, x0, ab[700].item(), ab[300].item(), eta=0.0)
    torch.testing.assert_close(out, schedules.q_sample(x0, t_prev, eps, ab), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["euler", "heun"])
def test_edm_ode_step_with_true_x0_reproduces_noising(name):
    """With an oracle denoiser for one fixed x0, the ODE moves x0 + sigma eps to x0 + sigma' eps exactly."""
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)
    sig = torch.tensor([5.0, 1.0, 0.2], dtype=torch.float64)
    out = samplers.SAMPLERS[name](lambda x, s: x0, (3, 2), sigmas=sig, x_T=x0 + 5.0 * eps)
    torch.testing.assert_close(out, x0 + 0.2 * eps, atol=1e-5, rtol=1e-5)


def _gauss_denoisers(sd: float, ab: torch.Tensor):
    """Exact posterior-mean denoisers for data ~ N(0, sd^2 I): VE (sigma) and VP (integer t)."""
    ve = lambda x, s: (sd**2 / (sd**2 + s.reshape(-1, 1) ** 2)) * x  # noqa: E731

    def vp(x, t):
        a = ab[t].float().reshape(-1, 1)
        return a.sqrt() * sd**2 / (a * sd**2 + 1 - a) * x
    return ve, vp


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler", "heun"])
def test_samplers_recover_gaussian_with_exact_denoiser(name):
    sd, n = 0.5, 4000
    ab = schedules.make_alpha_bars("linear", 1000)
    ve, vp = _gauss_denoisers(sd, ab)
    kw = dict(seed=3)
    if name == "ddpm":
        x = samplers.ddpm_sample(vp, (n, 2), ab, 1000, **kw)  # ancestral needs small steps
    elif name == "ddim":
        x = samplers.ddim_sample(vp, (n, 2), ab, 50, **kw)
    elif name == "euler":
        x = samplers.euler_sample(ve, (n, 2), n_steps=64, **kw)
    else:
        x = samplers.heun_sample(ve, (n, 2), n_steps=100, S_churn=40, S_tmin=0.05, S_tmax=50, S_noise=1.003, **kw)
    assert x.std().item() == pytest.approx(sd, rel=0.06)
    assert abs(x.mean().item()) < 0.05


@pytest.mark.parametrize("name", ["ddpm", "ddim", "euler", "heun"])
def test_same_seed_same_sample(name):
    ab = schedules.make_alpha_bars("cosine", 100)
    den_t = lambda x, t: 0.5 * x  # noqa: E731
    kw = dict(n_steps=8) if name in ("euler", "heun") else {}
    args = (den_t, (5, 3)) + ((ab, 10) if name in ("ddpm", "ddim") else ())
    extra = dict(eta=1.0) if name == "ddim" else (dict(S_churn=10.0) if name == "heun" else {})
    run = lambda seed: samplers.SAMPLERS[name](*args, seed=seed, **kw, **extra)  # noqa: E731
    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_edm_preconditioning_constants():
    sd = 0.5
    sigma = torch.tensor([sd, 0.002, 80.0])
    c_skip, c_out, c_in, c_noise = edm.edm_coeffs(sigma, sd)
    assert c_skip[0].item() == pytest.approx(0.5) and c_out[0].item() == pytest.approx(sd / math.sqrt(2))
    assert c_in[0].item() == pytest.approx(1 / (sd * math.sqrt(2)))
    torch.testing.assert_close(c_noise, sigma.log() / 4)
    assert c_skip[1].item() == pytest.approx(1.0, abs=1e-4) and c_skip[2].item() < 1e-4
    torch.testing.assert_close(edm.edm_weight(sigma, sd), 1 / c_out**2)
    # Effective training target has unit variance: (x0 - c_skip (x0 + sigma n)) / c_out for x0 ~ N(0, sd^2).
    var = ((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2
    torch.testing.assert_close(var, torch.ones(3), rtol=1e-4, atol=1e-4)


def test_edm_precond_wraps_net_and_loss_is_finite():
    seen = {}

    class Net(torch.nn.Module):
        def forward(self, x_in, c_noise, cond):
            seen.update(x_in=x_in, c_noise=c_noise, cond=cond)
            return torch.ones_like(x_in)

    pre = edm.EDMPrecond(Net(), sigma_data=0.5)
    x, s = torch.randn(2, 3, 4, 4), torch.tensor([0.5, 2.0])
    out = pre(x, s, cond="c")
    c_skip, c_out, c_in, c_noise = edm.edm_coeffs(s, 0.5)
    torch.testing.assert_close(seen["x_in"], c_in.reshape(-1, 1, 1, 1) * x)
    torch.testing.assert_close(seen["c_noise"], c_noise)
    torch.testing.assert_close(out, c_skip.reshape(-1, 1, 1, 1) * x + c_out.reshape(-1, 1, 1, 1))
    assert seen["cond"] == "c"
    loss, logs = edm.edm_loss(pre, x, None, edm.EDMConfig(), torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and set(logs) >= {"loss", "mse_x0"}


def test_edm_precond_passes_side_outputs_through():
    """A net returning (F, aux) gets D built from F and aux back untouched; edm_loss logs what aux_logs makes of it."""
    class Net(torch.nn.Module):
        def forward(self, x_in, c_noise, cond):
            return torch.zeros_like(x_in), {"side": c_noise}

    pre = edm.EDMPrecond(Net(), sigma_data=0.5)
    x, s = torch.randn(2, 3), torch.tensor([0.5, 2.0])
    out, aux = pre(x, s)
    c_skip, _, _, c_noise = edm.edm_coeffs(s, 0.5)
    torch.testing.assert_close(out, c_skip[:, None] * x)
    torch.testing.assert_close(aux["side"], c_noise)
    loss, logs = edm.edm_loss(pre, x, None, edm.EDMConfig(), torch.Generator().manual_seed(0),
                              aux_logs=lambda a, cond: {"side_mean": a["side"].mean()})
    assert torch.isfinite(loss) and set(logs) == {"loss", "mse_x0", "side_mean"}


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_objective_parameterisations_round_trip(prediction):
    ab = schedules.make_alpha_bars("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    t = torch.tensor([0, 10, 100, 500, 900, 999])
    x_t = schedules.q_sample(x0, t, eps, ab)
    target = objectives.target_for(prediction, x0, eps, t, ab)
    torch.testing.assert_close(objectives.pred_to_x0(target, x_t, t, ab, prediction), x0, atol=2e-3, rtol=1e-3)
    oracle = lambda x, tt, c: target  # noqa: E731
    loss, logs = objectives.diffusion_loss(oracle, x0, None, ab, prediction)
    assert torch.isfinite(loss) and "mse_x0" in logs
    with pytest.raises(ValueError, match="unknown prediction"):
        objectives.target_for("score", x0, eps, t, ab)


def test_guidance_hooks_are_called_and_steer():
    calls = []

    def hook(x, i, n):
        calls.append((i, n))
        return x

    samplers.euler_sample(lambda x, s: 0 * x, (2, 2), n_steps=5, guidance=hook, seed=0)
    assert calls == [(i, 5) for i in range(5)]
    # Guidance on the denoised estimate: forcing x0_hat to a target drives the sample there.
    target = torch.tensor([[1.0, -2.0]]).expand(3, 2)
    x = samplers.heun_sample(lambda x, s: 0 * x, (3, 2), n_steps=10, denoised_hook=lambda x0, i, n: target, seed=0)
    torch.testing.assert_close(x, target, atol=1e-4, rtol=0)
    # A gradient-taking hook on channel 0 only (as PGD does on action channels) works inside the sampler.

    def grad_hook(x, i, n):
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            logp = -((xr[:, 0] - 3.0) ** 2).sum()
            (grad,) = torch.autograd.grad(logp, xr)
        mask = torch.zeros_like(x)
        mask[:, 0] = 1
        return x + 0.4 * grad * mask

    ab = schedules.make_alpha_bars("linear", 100)
    run = lambda hook: samplers.ddim_sample(lambda x, t: x, (4, 2), ab, 10, guidance=hook, seed=0)  # noqa: E731
    with torch.no_grad():  # callers often sample under no_grad; the hook must still be able to differentiate
        guided, plain = run(grad_hook), run(None)
    torch.testing.assert_close(guided[:, 1], plain[:, 1])
    assert (guided[:, 0] > plain[:, 0] + 0.5).all()


def test_classifier_free_guidance():
    c, u = torch.tensor([2.0]), torch.tensor([1.0])
    assert guidance.cfg_combine(c, u, 1.0).item() == 2.0 and guidance.cfg_combine(c, u, 0.0).item() == 1.0
    assert guidance.cfg_combine(c, u, 3.0).item() == 4.0
    assert guidance.cfg_combine2(u, c, torch.tensor([5.0]), 1.0, 1.0).item() == 5.0
    den = guidance.cfg_denoiser(lambda x, s, cond: x + cond, 1.0, 0.0, 2.0)
    assert den(torch.zeros(1), None).item() == 2.0
    cond, null = torch.ones(1000, 3), torch.zeros(3)
    out, drop = guidance.drop_condition(cond, null, 0.3, torch.Generator().manual_seed(0))
    assert 0.25 < drop.float().mean() < 0.35 and torch.equal(out[drop], torch.zeros(int(drop.sum()), 3))
    assert torch.equal(out[~drop], cond[~drop])
