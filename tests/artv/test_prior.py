"""ART·V's two stages: the stage-1 image prior (no references), space-to-depth patches, and stage 2 initialised
from the prior with the minimal changes (with no reference it computes exactly the prior's denoiser)."""
import pytest
import torch

from tests.artv.test_model import H, W, inputs, perturb_outputs, tiny_cfg
from worldgen.artv.generate import GenerateOptions, _anchor_index, rollout, sample_images
from worldgen.artv.model import ARTV, ARTVLossConfig, artv_pair_loss, init_from_prior, make_cond


def _prior(**kw) -> ARTV:
    torch.manual_seed(0)
    model = ARTV(tiny_cfg(references=False, **kw))
    perturb_outputs(model)
    return model


def test_prior_has_no_reference_inputs_and_patch_is_lossless():
    prior = _prior(patch=2)
    assert prior.net.unet.conv_in.in_channels == 12 and prior.net.ref_emb is None and prior.net.aug_emb is None
    x = torch.randn(2, 3, H, W)
    assert torch.equal(prior.net._from_patches(prior.net._to_patches(x)), x)
    _, s, cond = inputs()
    out, extras = prior(x, s, cond)
    assert out.shape == x.shape and "mask" not in extras
    cond2 = dict(cond, prev_in=cond["prev_in"] + 5.0, anchor_in=cond["anchor_in"] - 3.0)
    assert torch.equal(prior(x, s, cond2)[0], out)  # references are ignored
    with pytest.raises(ValueError, match="patch"):
        ARTV(tiny_cfg(patch=3))


@pytest.mark.parametrize("patch", [1, 2])
def test_stage2_from_prior_equals_prior_without_reference(patch):
    prior = _prior(patch=patch)
    torch.manual_seed(5)
    model = ARTV(tiny_cfg(patch=patch))
    report = init_from_prior(model, prior.state_dict(), prior.cfg)
    assert any("ref_emb" in k for k in report["added"]) and report["copied"] > 10
    x, s, cond = inputs()
    no_ref = make_cond(None, None, cond["text"], cond["text_mask"], b=2, shape=(3, H, W), device="cpu")
    torch.testing.assert_close(model(x, s, no_ref)[0], prior(x, s, no_ref)[0], rtol=0, atol=1e-6)
    conv = model.net.unet.conv_in.weight
    assert conv[:, 3 * patch * patch:].abs().sum() == 0  # reference channels start switched off
    out, extras = model(x, s, cond)  # with references: the mask blends the previous frame in at 0.5
    assert torch.allclose(extras["mask"], torch.full_like(extras["mask"], 0.5))
    with pytest.raises(ValueError, match="not a stage-1 prior"):
        init_from_prior(ARTV(tiny_cfg()), model.state_dict(), model.cfg)
    with pytest.raises(ValueError, match="differ"):
        init_from_prior(ARTV(tiny_cfg(patch=3 - patch)), prior.state_dict(), prior.cfg)


def test_prior_loss_and_images_and_rollout_refusal():
    prior = _prior()
    x0 = torch.rand(4, 3, H, W) * 2 - 1
    tokens, mask = torch.randn(4, 6, 16), torch.ones(4, 6, dtype=torch.bool)
    loss, logs = artv_pair_loss(prior, None, None, x0, tokens, mask, ARTVLossConfig(), torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and "mask_mean" not in logs
    assert prior.net.unet.conv_in.weight.grad.abs().sum() > 0
    imgs = sample_images(prior, tokens, mask, 3, GenerateOptions(steps=2), batch=2)
    assert imgs.shape == (3, 3, H, W) and imgs.abs().max() <= 1
    again = sample_images(prior, tokens, mask, 3, GenerateOptions(steps=2), batch=2)
    assert torch.equal(imgs, again)
    with pytest.raises(ValueError, match="image prior"):
        rollout(prior, lambda i: (None, None), 3, GenerateOptions(steps=1), first=imgs[:1], progress=False)


def test_anchor_every_keeps_anchor_distance_bounded():
    assert [_anchor_index(i, (), 4) for i in range(1, 11)] == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]
    assert [_anchor_index(i, (), 0) for i in (1, 50, 200)] == [0, 0, 0]
    assert _anchor_index(7, (6,), 4) == 6 and _anchor_index(10, (6,), 4) == 8
    assert all(1 <= i - _anchor_index(i, (), 64) <= 64 for i in range(1, 300))
