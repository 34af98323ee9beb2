"""Anti-drift masking statistics and reweighting math."""
import pytest
import torch

from tests.worldmodel.conftest import random_clip
from worldgen.worldmodel.drift import DriftConfig, mask_inputs, token_weights, weighted_mean, world_model_loss


def test_masking_rates_match_config():
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 1000, (4000, 3, 20), generator=g)
    ego = torch.stack([torch.randint(0, v, (4000, 3), generator=g) for v in (50, 40, 30)], -1)
    ego[:10, 1] = torch.tensor([50, 40, 30])  # posedrop null tokens
    cfg = DriftConfig(mask_prob=0.3, pkeep=0.7)
    ego_in, img_in, st = mask_inputs(ego, img, 1000, (50, 40, 30), cfg, torch.Generator().manual_seed(1))
    sel = st["select"]
    assert sel.float().mean().item() == pytest.approx(0.3, abs=0.03)
    rate_sel = st["replaced_img"][sel].float().mean().item()
    assert rate_sel == pytest.approx(0.3, abs=0.01)  # 1 - pkeep
    assert not st["replaced_img"][~sel].any() and torch.equal(img_in[~sel], img[~sel])
    changed = (img_in != img)[sel].float().mean().item()
    assert changed == pytest.approx(0.3 * (1 - 1 / 1000), abs=0.01)  # a random code can equal the original
    assert st["replaced_ego"][sel].float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert torch.equal(ego_in[:10, 1], ego[:10, 1])  # null tokens never corrupted
    assert ego_in[..., 0][st["replaced_ego"][..., 0]].max() < 50 and img_in.max() < 1000


def test_loss_targets_stay_clean(tiny_model):
    clip = random_clip(tiny_model, 2, 3)
    cfg = DriftConfig(mask_prob=1.0, pkeep=0.0, reweighting=False)
    torch.manual_seed(0)
    loss_masked, logs = world_model_loss(tiny_model, clip, cfg, train=True)
    assert logs["replaced_img"] > 0.9
    # the same call with the model's input fixed to the corrupted tokens but clean targets gives the same loss
    assert torch.isfinite(loss_masked)
    loss_eval, logs_eval = world_model_loss(tiny_model, clip, cfg, train=False)
    assert "replaced_img" not in logs_eval and not torch.isclose(loss_masked, loss_eval)


def test_uniform_weights_are_plain_mean_and_weighted_mean_is_scale_stable():
    ce = torch.rand(2, 4, 3 + 10)
    valid = torch.ones_like(ce, dtype=torch.bool)
    w = token_weights(4, 10, DriftConfig(reweighting=False))
    assert torch.allclose(weighted_mean(ce, w, valid), ce.mean())
    w = token_weights(4, 10, DriftConfig(reweighting=True, type_shares=[1, 2, 3, 14], last_frame_weight=3.0))
    const = torch.full_like(ce, 2.5)
    assert torch.allclose(weighted_mean(const, w, valid), torch.tensor(2.5))  # weights never change the loss scale


def test_type_shares_and_frame_ramp():
    cfg = DriftConfig(reweighting=True, type_shares=[1, 1, 2, 6], last_frame_weight=1.0)
    w = token_weights(3, 8, cfg)
    assert torch.allclose(w[0, :3], torch.tensor([0.1, 0.1, 0.2]))
    assert torch.allclose(w[0, 3:], torch.full((8,), 0.6 / 8))
    ce = torch.rand(1, 3, 11)
    valid = torch.ones_like(ce, dtype=torch.bool)
    expect = 0.1 * ce[..., 0].mean() + 0.1 * ce[..., 1].mean() + 0.2 * ce[..., 2].mean() + 0.6 * ce[..., 3:].mean()
    assert torch.allclose(weighted_mean(ce, w, valid), expect)
    ramp = token_weights(5, 8, DriftConfig(reweighting=True, last_frame_weight=2.0))
    assert torch.allclose(ramp[:, 0] / ramp[0, 0], torch.tensor([1.0, 1.25, 1.5, 1.75, 2.0]))
    with pytest.raises(ValueError, match="type_shares"):
        token_weights(2, 8, DriftConfig(reweighting=True, type_shares=[1, 1, 1]))


def test_posedrop_zeroes_ego_losses(tiny_model):
    clip = random_clip(tiny_model, 1, 4)
    clip["keep"][:, 2] = False
    clip["ego"][:, 2] = torch.tensor(tiny_model.ego_vocab)
    cfg = DriftConfig(masking=False)
    a, _ = world_model_loss(tiny_model, clip, cfg)
    # ego ids of the pose-less frame are never targets: changing them (as inputs they are null anyway) keeps the loss
    other = {k: v.clone() for k, v in clip.items()}
    other["ego"][:, 2] = torch.tensor(tiny_model.ego_vocab)
    b, logs = world_model_loss(tiny_model, other, cfg)
    assert torch.allclose(a, b) and torch.isfinite(logs["ce_yaw"])
    all_dropped = {**clip, "keep": torch.zeros_like(clip["keep"])}
    all_dropped["ego"] = torch.tensor(tiny_model.ego_vocab).expand_as(clip["ego"]).clone()
    _, logs = world_model_loss(tiny_model, all_dropped, cfg)
    assert logs["ce_yaw"] == 0 and logs["ce_x"] == 0


def test_changed_weight_upweights_image_targets_that_differ_from_the_previous_frame(tiny_model):
    from worldgen.worldmodel.drift import change_weights, per_token_ce

    clip = random_clip(tiny_model, 2, 3)
    clip["img"][:, 1, :5] = clip["img"][:, 0, :5]  # five codes of frame 1 repeat frame 0's
    w = change_weights(clip["img"], 4.0)
    assert w.shape == (2, 2, 3 + tiny_model.n_img)
    assert (w[..., :3] == 1).all() and (w[:, 0, 3:8] == 1).all()  # ego tokens and unchanged codes keep weight 1
    changed = clip["img"][:, 1:] != clip["img"][:, :-1]
    assert (w[..., 3:][changed] == 4).all() and (w[..., 3:][~changed] == 1).all()
    cfg = DriftConfig(masking=False, changed_weight=4.0)
    loss, _ = world_model_loss(tiny_model, clip, cfg)
    with torch.no_grad():
        ego_logits, img_logits = tiny_model(clip["ego"], clip["img"], clip["keep"])
        ce = per_token_ce(tiny_model, ego_logits, img_logits, clip["ego"][:, 1:], clip["img"][:, 1:])
    assert torch.allclose(loss, (w * ce).sum() / w.sum(), atol=1e-6)
    plain, _ = world_model_loss(tiny_model, clip, DriftConfig(masking=False))
    assert torch.allclose(plain, ce.mean(), atol=1e-6) and not torch.allclose(loss, plain)
    with pytest.raises(ValueError, match="changed_weight"):
        change_weights(clip["img"], 0.0)
