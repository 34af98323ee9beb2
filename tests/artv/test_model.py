"""ART·V denoiser: shapes, zero-initialised reference channels, the mask blend, switches, text dropout, the loss, the
EDM wrapper (the network sees only c_in x and c_noise) and loading pre-wrapper checkpoints."""
import pytest
import torch

from worldgen.artv.model import ARTV, ARTVConfig, ARTVLossConfig, ARTVNet, artv_pair_loss, make_cond, resize_frames
from worldgen.diffusion.edm import EDMPrecond, edm_coeffs
from worldgen.nn.unet import UNetConfig

H, W = 16, 32


def tiny_cfg(**kw) -> ARTVConfig:
    unet = UNetConfig(base=8, mults=[1, 2], blocks_per_level=1, attn_levels=[1], emb_dim=32, head_dim=8, groups=4)
    return ARTVConfig(frame_size=[H, W], unet=unet, text_encoder="hash", text_dim=16, max_text_tokens=6, **kw)


def inputs(b=2, seed=0, text=True):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    x, prev, anchor = r(b, 3, H, W), r(b, 3, H, W).clamp(-1, 1), r(b, 3, H, W).clamp(-1, 1)
    tokens, mask = (r(b, 6, 16), torch.ones(b, 6, dtype=torch.bool)) if text else (None, None)
    cond = make_cond(prev, anchor, tokens, mask, b=b, shape=(3, H, W), device="cpu",
                     aug_sigma=torch.full((b,), 0.3), aug_noise=r(b, 3, H, W))
    return x, torch.tensor([0.5, 3.0][:b]), cond


def perturb_outputs(model: ARTV):
    """Give the zero-initialised output layers random weights so the tests see a non-trivial network."""
    torch.manual_seed(1)
    for m in model.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.weight.abs().sum() == 0:
            torch.nn.init.normal_(m.weight, std=0.05)


def test_shapes_and_mask_range():
    model = ARTV(tiny_cfg())
    x, s, cond = inputs()
    out, extras = model(x, s, cond)
    assert out.shape == x.shape and extras["mask"].shape == (2, 1, H, W)
    assert ((extras["mask"] >= 0) & (extras["mask"] <= 1)).all()
    assert model.net.unet.conv_in.in_channels == 9 and model.net.unet.conv_out.out_channels == 4


def test_reference_channels_start_at_zero():
    """At initialisation the denoiser ignores the reference inputs (zero-initialised extra channels)."""
    model = ARTV(tiny_cfg())
    perturb_outputs(model)
    with torch.no_grad():
        model.net.unet.conv_in.weight[:, 3:].zero_()
    x, s, cond = inputs()
    a = model(x, s, cond)[1]["x0_theta"]
    cond2 = {**cond, "prev_in": cond["prev_in"] + 5, "anchor_in": -cond["anchor_in"]}
    torch.testing.assert_close(model(x, s, cond2)[1]["x0_theta"], a)


def _set_mask_logit(model: ARTV, value: float):
    with torch.no_grad():
        model.net.unet.conv_out.weight[3:].zero_()
        model.net.unet.conv_out.bias[3] = value


def test_mask_blend_formula():
    model = ARTV(tiny_cfg())
    perturb_outputs(model)
    x, s, cond = inputs()
    _set_mask_logit(model, 40.0)  # m = 1: copy the previous frame
    out, ex = model(x, s, cond)
    torch.testing.assert_close(out, cond["prev"])
    _set_mask_logit(model, -40.0)  # m = 0: the network's own prediction
    out, ex = model(x, s, cond)
    torch.testing.assert_close(out, ex["x0_theta"])
    _set_mask_logit(model, 0.3)
    out, ex = model(x, s, cond)
    m = torch.sigmoid(torch.tensor(0.3))
    torch.testing.assert_close(out, m * cond["prev"] + (1 - m) * ex["x0_theta"])
    _set_mask_logit(model, 40.0)  # without a reference the mask is forced to 0
    out, ex = model(x, s, {**cond, "has_ref": torch.tensor([False, True])})
    torch.testing.assert_close(out[0], ex["x0_theta"][0])
    torch.testing.assert_close(out[1], cond["prev"][1])


@pytest.mark.parametrize("switch,check", [
    ("use_mask", lambda m: m.net.unet.conv_out.out_channels == 3),
    ("use_anchor", lambda m: m.net.unet.conv_in.in_channels == 6),
    ("noise_aug", lambda m: m.net.aug_emb is None),
])
def test_ablation_switches(switch, check):
    model = ARTV(tiny_cfg(**{switch: False}))
    assert check(model)
    x, s, cond = inputs()
    out, extras = model(x, s, cond)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert ("mask" in extras) == (switch != "use_mask")


def test_anchor_switch_ignores_anchor_and_aug_level_matters():
    model = ARTV(tiny_cfg(use_anchor=False))
    perturb_outputs(model)
    x, s, cond = inputs()
    a = model(x, s, cond)[0]
    torch.testing.assert_close(model(x, s, {**cond, "anchor_in": cond["anchor_in"] * 0 + 3})[0], a)
    model = ARTV(tiny_cfg())
    perturb_outputs(model)
    b = model(x, s, cond)[0]
    assert not torch.allclose(model(x, s, {**cond, "aug_sigma": cond["aug_sigma"] * 0})[0], b)


def test_dropped_text_uses_null_text():
    model = ARTV(tiny_cfg())
    perturb_outputs(model)
    with torch.no_grad():
        model.net.null_text.normal_()
    x, s, cond = inputs()
    drop = {**cond, "text_drop": torch.tensor([True, True])}
    a = model(x, s, drop)[0]
    torch.testing.assert_close(model(x, s, {**drop, "text": drop["text"] * 7})[0], a)
    assert not torch.allclose(model(x, s, cond)[0], a)
    _, _, no_text = inputs(text=False)
    torch.testing.assert_close(model(x, s, {**no_text, **{k: cond[k] for k in ("prev", "prev_in", "anchor_in")}})[0], a)


def test_loss_trains_on_a_fixed_batch():
    torch.manual_seed(0)
    model = ARTV(tiny_cfg())
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, 4, H, W, generator=g) * 2 - 1
    tokens, mask = torch.randn(4, 6, 16, generator=g), torch.ones(4, 6, dtype=torch.bool)
    lc = ARTVLossConfig()
    pick = lambda idx: torch.cat([frames[:, :, i] for i in idx])  # noqa: E731  (anchor, previous, target) x 2 pairs
    anchor, prev, target = pick([0, 0]), pick([0, 2]), pick([1, 3])

    def step_loss(seed):
        return artv_pair_loss(model, anchor, prev, target, tokens, mask, lc, torch.Generator().manual_seed(seed))

    def evaluate():
        return step_loss(5)[0].item()
    before = evaluate()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for i in range(30):
        loss, logs = step_loss(i)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert {"loss", "mse_x0", "mask_mean"} <= set(logs) and torch.isfinite(loss)
    assert model.net.unet.conv_in.weight.grad[:, 3:].abs().sum() > 0  # reference channels learn
    assert evaluate() < before


def test_network_sees_only_preconditioned_input_and_c_noise():
    """ARTV = mask head over diffusion's EDMPrecond(ARTVNet): the raw network gets (c_in x, c_noise, cond)."""
    model = ARTV(tiny_cfg())
    assert isinstance(model.denoiser, EDMPrecond) and isinstance(model.net, ARTVNet)
    seen = {}
    model.net.register_forward_hook(lambda mod, args, out: seen.update(x_in=args[0], c_noise=args[1]))
    x, s, cond = inputs()
    model(x, s, cond)
    _, _, c_in, c_noise = edm_coeffs(s, model.cfg.sigma_data)
    torch.testing.assert_close(seen["x_in"], c_in.reshape(-1, 1, 1, 1) * x)
    torch.testing.assert_close(seen["c_noise"], c_noise)


def test_pre_wrapper_checkpoint_names_load():
    """Weights saved before the EDM wrapper (top-level ``unet.*``, ``null_text``...) load strictly, same model."""
    model = ARTV(tiny_cfg())
    perturb_outputs(model)
    legacy = {k.removeprefix("denoiser.net."): v for k, v in model.state_dict().items()}
    assert "unet.conv_in.weight" in legacy and "null_text" in legacy
    fresh = ARTV(tiny_cfg())
    fresh.load_state_dict(legacy, strict=True)
    x, s, cond = inputs()
    torch.testing.assert_close(fresh(x, s, cond)[0], model(x, s, cond)[0])


def test_resize_frames():
    x = torch.rand(2, 3, 5, 64, 128)
    assert resize_frames(x, [32, 64]).shape == (2, 3, 5, 32, 64)
    assert resize_frames(x[:, :, 0], (32, 64)).shape == (2, 3, 32, 64)
    assert resize_frames(x, (64, 128)) is x
