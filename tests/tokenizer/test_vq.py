"""Invariants of the VQ video tokenizer: shapes, straight-through gradients, codebook usage, dead-code restart,
causal temporal attention, frame-by-frame and chunked coding equal to whole-clip coding."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from worldgen.tokenizer import VQVideoTokenizer
from worldgen.tokenizer.losses import VQGANLoss, VQLossConfig, psnr
from worldgen.tokenizer.vq import VectorQuantizer


def test_encode_decode_shapes_and_range(tiny_tok, video):
    x = video(2, 5)
    codes = tiny_tok.encode(x)
    assert codes.shape == (2, 5, 4, 8) and codes.dtype == torch.int64
    assert int(codes.min()) >= 0 and int(codes.max()) < tiny_tok.codebook_size
    assert tiny_tok.grid == (4, 8) and tiny_tok.downsample == 4 and tiny_tok.codebook_size == 64
    out = tiny_tok.decode(codes)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert float(out.min()) >= -1 and float(out.max()) <= 1


def test_rejects_bad_shapes_and_codes(tiny_tok, video):
    with pytest.raises(ValueError, match="not divisible"):
        tiny_tok.encode(video(1, 2, 18, 32))
    with pytest.raises(ValueError, match=r"b, 3, t, h, w"):
        tiny_tok.encode(torch.zeros(1, 3, 16, 32))
    with pytest.raises(ValueError, match="codes must lie"):
        tiny_tok.decode(torch.full((1, 1, 4, 8), 64))


def test_straight_through_gradients_reach_encoder_and_codebook(tiny_cfg, video):
    torch.manual_seed(0)
    tok = VQVideoTokenizer(tiny_cfg()).train()
    x = video(1, 3)
    recon, _, vq_loss, _ = tok(x)
    F.l1_loss(recon, x).backward(retain_graph=True)
    enc_grad = tok.encoder.net[0].weight.grad
    assert enc_grad is not None and enc_grad.abs().sum() > 0, "reconstruction gradient must pass the quantizer"
    assert tok.quantizer.codebook.grad is None, "the pixel loss must not move the codebook (straight-through)"
    vq_loss.backward()
    assert tok.quantizer.codebook.grad.abs().sum() > 0


def test_quantizer_output_is_nearest_normalised_code(tiny_cfg):
    torch.manual_seed(0)
    q = VectorQuantizer(tiny_cfg()).eval()
    z = F.normalize(torch.randn(50, 8), dim=-1)
    zq, codes, _, _ = q(z)
    e = F.normalize(q.codebook, dim=-1)
    assert torch.equal(codes, (z @ e.t()).argmax(-1))
    assert torch.allclose(zq, e[codes], atol=1e-6)


def test_usage_logs_count_codes(tiny_cfg):
    q = VectorQuantizer(tiny_cfg(codebook_size=8)).eval()
    e = F.normalize(q.codebook, dim=-1).detach()
    z = torch.cat([e[0:1].repeat(3, 1), e[1:2].repeat(3, 1)])  # two codes, equally often
    _, codes, _, logs = q(z)
    assert sorted(set(codes.tolist())) == [0, 1]
    assert math.isclose(float(logs["perplexity"]), 2.0, rel_tol=1e-5)
    assert math.isclose(float(logs["codes_used_frac"]), 2 / 8)


def test_dead_code_restart_revives_unused_codes(tiny_cfg):
    torch.manual_seed(0)
    q = VectorQuantizer(tiny_cfg(codebook_size=16, restart_every=4, usage_decay=0.3)).train()
    with torch.no_grad():  # every code but 0 points away from the data, so only code 0 is ever chosen
        q.codebook[:] = F.normalize(torch.randn(16, 8), dim=-1)
        q.codebook[:, 0] = -5.0
        q.codebook[0] = F.normalize(torch.ones(8), dim=-1)
        q.codebook[0, 0] = 3.0
    data = F.normalize(torch.randn(256, 8).abs() + 0.5, dim=-1)
    _, codes, _, logs = q(data)
    assert set(codes.tolist()) == {0} and float(logs["codes_used_frac"]) == 1 / 16
    for _ in range(3):
        q(data)  # 4 training forwards: the usage EMA of codes 1..15 decays to zero, then they are restarted
    assert int(q.restarted) == 15
    _, codes, _, logs = q.eval()(data)
    assert float(logs["codes_used_frac"]) > 0.5, "restarted codes sit on data points and must be chosen again"


def test_temporal_attention_is_causal(tiny_tok, video):
    x = video(1, 6)
    y = x.clone()
    y[:, :, 4:] = video(1, 2, seed=7)  # change the last two frames only
    assert torch.equal(tiny_tok.encode(x)[:, :4], tiny_tok.encode(y)[:, :4])
    lat_x, lat_y = tiny_tok.latents(x), tiny_tok.latents(y)
    assert torch.allclose(lat_x[:, :, :4], lat_y[:, :, :4], atol=1e-6)
    assert not torch.allclose(lat_x[:, :, 4:], lat_y[:, :, 4:])
    codes = tiny_tok.encode(x)
    other = codes.clone()
    other[:, 4:] = (other[:, 4:] + 1) % 64
    assert torch.allclose(tiny_tok.decode(codes)[:, :, :4], tiny_tok.decode(other)[:, :, :4], atol=1e-6)


def test_earlier_frames_do_influence_later_ones(tiny_tok, video):
    """The temporal attention is live: changing frame 0 changes frame 1's latents (window 3 covers it)."""
    x = video(1, 4)
    y = x.clone()
    y[:, :, 0] = -x[:, :, 0]
    assert not torch.allclose(tiny_tok.latents(x)[:, :, 1], tiny_tok.latents(y)[:, :, 1])
    # ... but not frames beyond the window (window 3 -> frame 3 sees frames 1..3 only)
    assert torch.allclose(tiny_tok.latents(x)[:, :, 3], tiny_tok.latents(y)[:, :, 3], atol=1e-5)


def test_frame_by_frame_decode_equals_clip_decode(tiny_tok, video):
    codes = tiny_tok.encode(video(2, 7))
    whole = tiny_tok.decode(codes)
    ctx = tiny_tok.context_frames
    assert ctx == 2
    for t in range(7):
        one = tiny_tok.decode(codes[:, t:t + 1], past=codes[:, max(0, t - ctx):t] if t else None)
        assert torch.allclose(one[:, :, 0], whole[:, :, t], atol=1e-5), t


def test_frame_by_frame_encode_and_chunked_coding_equal_whole_clip(tiny_tok, video):
    x = video(1, 9)
    whole = tiny_tok.encode(x)
    ctx = tiny_tok.context_frames
    for t in range(9):
        past = x[:, :, max(0, t - ctx):t] if t else None
        assert torch.equal(tiny_tok.encode(x[:, :, t:t + 1], past=past)[:, 0], whole[:, t])
    assert torch.equal(tiny_tok.encode_chunked(x, chunk=2), whole)
    assert torch.allclose(tiny_tok.decode_chunked(whole, chunk=4), tiny_tok.decode(whole), atol=1e-5)


def test_unbounded_window_and_no_temporal_layers(tiny_cfg, video):
    torch.manual_seed(0)
    tok = VQVideoTokenizer(tiny_cfg(temporal_window=0)).eval()
    assert tok.context_frames is None
    x = video(1, 5)
    assert torch.equal(tok.encode_chunked(x, chunk=2), tok.encode(x))
    tok0 = VQVideoTokenizer(tiny_cfg(temporal_layers=0)).eval()
    assert tok0.context_frames == 0
    assert torch.equal(tok0.encode(x)[:, 2:3], tok0.encode(x[:, :, 2:3]))


def test_loss_with_discriminator_trains_disc_only_on_its_own_loss(tiny_cfg, video):
    torch.manual_seed(0)
    tok = VQVideoTokenizer(tiny_cfg()).train()
    obj = VQGANLoss(VQLossConfig(disc_weight=0.5, disc_start=0, disc_base=8, disc_layers=2))
    x = video(1, 2)
    recon, _, vq_loss, _ = tok(x)
    loss, logs = obj(x, recon, vq_loss, tok.last_layer, step=0)
    assert {"rec", "grad", "vq", "psnr", "g_loss", "d_loss", "adv_weight", "loss"} <= set(logs)
    loss.backward()
    assert all(p.grad is not None for p in obj.disc.parameters())
    # the discriminator's gradient equals that of the hinge loss alone (the generator term used detached weights)
    got = [p.grad.clone() for p in obj.disc.parameters()]
    obj.zero_grad()
    from worldgen.tokenizer.losses import hinge_d_loss
    hinge_d_loss(obj.disc(x), obj.disc(recon.detach())).backward()
    for a, p in zip(got, obj.disc.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)


def _line_scenes(b=2, t=2, h=16, w=32, seed=0) -> torch.Tensor:
    """Top-down-road-like frames: flat grey, 1-pixel white lines, small coloured boxes (mostly flat, like the data)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((b, 3, t, h, w), -0.2)
    for i in range(b):
        for j in range(t):
            for r in torch.randint(0, h, (2,), generator=g).tolist():
                x[i, :, j, r, :] = 0.9
            for _ in range(3):
                r, c = int(torch.randint(0, h - 2, (1,), generator=g)), int(torch.randint(0, w - 3, (1,), generator=g))
                x[i, :, j, r:r + 2, c:c + 3] = torch.rand(3, 1, 1, generator=g) * 2 - 1
    return x


def _overfit(tiny_cfg, model_kw: dict, loss_cfg: VQLossConfig, steps: int = 60) -> tuple[float, float, float]:
    """(final PSNR, mean-colour baseline PSNR, reconstruction std / data std) after overfitting one batch."""
    torch.manual_seed(0)
    tok = VQVideoTokenizer(tiny_cfg(**model_kw)).train()
    obj = VQGANLoss(loss_cfg)
    x = _line_scenes()
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    for step in range(steps):
        recon, _, vq_loss, _ = tok(x)
        loss, _ = obj(x, recon, vq_loss, tok.last_layer, step)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tok.parameters(), 1.0)
        opt.step()
    tok.eval()
    out = tok.decode(tok.encode(x))
    baseline = float(psnr(x.mean(dim=(3, 4), keepdim=True).expand_as(x), x))
    ratio = float(out.std(dim=(3, 4)).mean() / x.std(dim=(3, 4)).mean())
    return float(psnr(out, x)), baseline, ratio


def _tiny_yaml_settings() -> tuple[dict, VQLossConfig]:
    from worldgen.config import load
    from worldgen.lit.tokenizer import Config

    cfg = load(Config, Path(__file__).resolve().parents[2] / "configs/drivingworld/tokenizer_tiny.yaml")
    m = cfg.model
    model_kw = dict(beta=m.beta, entropy_weight=m.entropy_weight, entropy_temperature=m.entropy_temperature,
                    restart_by_error=m.restart_by_error)
    return model_kw, cfg.loss


def test_tiny_settings_overfit_thin_lines_through_the_codes(tiny_cfg):
    """The tiny YAML's loss + quantizer settings must transmit content through the codes: one batch of mostly-flat
    line scenes is reconstructed far above the per-frame mean-colour baseline, not as a constant grey."""
    model_kw, loss_cfg = _tiny_yaml_settings()
    final, baseline, ratio = _overfit(tiny_cfg, model_kw, loss_cfg)
    assert final > baseline + 4.0 and ratio > 0.5, (final, baseline, ratio)


def test_old_tiny_settings_decode_constant_grey(tiny_cfg):
    """Regression witness for the bug in the first tiny run: L1 pixels + entropy penalty 0.01 at temperature 0.01
    stays at the constant-grey solution (at or below the mean-colour baseline) on the same batch."""
    model_kw, loss_cfg = _tiny_yaml_settings()
    model_kw.update(entropy_weight=0.01, entropy_temperature=0.01)
    loss_cfg.rec_loss = "l1"
    loss_cfg.fg_weight = loss_cfg.vehicle_weight = 0.0  # the first run had no foreground weighting
    final, baseline, ratio = _overfit(tiny_cfg, model_kw, loss_cfg)
    assert final < baseline + 1.0 and ratio < 0.2, (final, baseline, ratio)


def test_restart_by_error_targets_badly_served_latents(tiny_cfg):
    torch.manual_seed(0)
    q = VectorQuantizer(tiny_cfg(codebook_size=4, restart_by_error=True)).train()
    e = F.normalize(q.codebook, dim=-1).detach()
    far = -e[0:1]  # opposite to code 0; make it far from every code by moving codes 1..3 onto code 0
    with torch.no_grad():
        q.codebook[1:] = q.codebook[0:1]
    z = torch.cat([e[0:1].repeat(200, 1), far])  # 200 latents served perfectly, 1 served terribly
    q.usage[:] = 1.0
    q.usage[1:] = 0.0  # codes 1..3 are dead
    assert q.restart_dead_codes(z) == 3
    new = F.normalize(q.codebook[1:], dim=-1).detach()
    assert (new @ far[0] > 0.99).sum() >= 1, "the worst-served latent must receive a code"


def test_entropy_penalty_prefers_spread_confident_assignments(tiny_cfg):
    torch.manual_seed(0)
    q = VectorQuantizer(tiny_cfg(codebook_size=16, entropy_weight=0.1)).train()
    e = F.normalize(q.codebook, dim=-1).detach()
    spread = e
    collapsed = F.normalize(e[0:1] + 0.2 * torch.randn(16, 8), dim=-1)  # all latents around code 0
    assert float(q.entropy_penalty(spread)) < float(q.entropy_penalty(collapsed)) - 1.0
    z = collapsed.clone().requires_grad_(True)
    _, _, loss, logs = q(z)
    assert "entropy_penalty" in logs
    loss.backward()
    assert z.grad.abs().sum() > 0, "the penalty must push the encoder's latents apart"


def test_fsq_quantizer_round_trips_codes_and_trains_end_to_end(tiny_cfg, video):
    """model.quantizer=fsq: codes lie in [0, prod(levels)), decode(encode(x)) equals the training pass's
    reconstruction, and gradients reach the encoder through the straight-through rounding."""
    torch.manual_seed(0)
    tok = VQVideoTokenizer(tiny_cfg(quantizer="fsq", fsq_levels=[5, 4, 3])).eval()
    assert tok.codebook_size == 60 and tok.code_dim == 3
    x = video(b=1, t=3)
    codes = tok.encode(x)
    assert codes.dtype == torch.int64 and 0 <= int(codes.min()) and int(codes.max()) < 60
    recon, train_codes, vq_loss, logs = tok(x)
    assert torch.equal(codes, train_codes) and float(vq_loss) == 0.0 and "perplexity" in logs
    assert torch.allclose(tok.decode(codes), recon.clamp(-1, 1), atol=1e-5)
    tok.train()
    recon, *_ = tok(x)
    recon.pow(2).mean().backward()
    assert tok.encoder.net[0].weight.grad.abs().sum() > 0


def test_unknown_quantizer_is_a_clear_error(tiny_cfg):
    with pytest.raises(ValueError, match="model.quantizer"):
        VQVideoTokenizer(tiny_cfg(quantizer="lfq"))
