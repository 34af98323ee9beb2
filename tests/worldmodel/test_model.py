"""Causality, posedrop and cache exactness of the DrivingWorld GPT."""
import torch

from tests.worldmodel.conftest import random_clip, tiny_config
from worldgen.worldmodel.model import N_EGO, DrivingWorldGPT, count_parameters


def _all_logits(model, clip):
    ego, img = model(clip["ego"], clip["img"], clip["keep"])
    return torch.cat([*ego, img.flatten(-2)], -1)  # b t (all logits of each target frame)


def test_shapes_and_no_biases(tiny_model):
    clip = random_clip(tiny_model, 2, 4)
    ego, img = tiny_model(clip["ego"], clip["img"], clip["keep"])
    assert [e.shape for e in ego] == [(2, 3, v) for v in tiny_model.ego_vocab]
    assert img.shape == (2, 3, tiny_model.n_img, tiny_model.cfg.codebook_size)
    assert not any(n.endswith("bias") for n, _ in tiny_model.named_parameters())
    assert count_parameters(tiny_model) > 0


def test_later_frames_never_change_earlier_logits(tiny_model):
    clip = random_clip(tiny_model, 1, 4)
    with torch.no_grad():
        base = _all_logits(tiny_model, clip)
        changed = {k: v.clone() for k, v in clip.items()}
        changed["img"][:, 3] = (changed["img"][:, 3] + 1) % tiny_model.cfg.codebook_size
        changed["ego"][:, 3, 0] = (changed["ego"][:, 3, 0] + 1) % tiny_model.ego_vocab[0]
        out = _all_logits(tiny_model, changed)
    assert torch.allclose(out[:, :2], base[:, :2], atol=1e-5)  # predictions of frames 1, 2 ignore frame 3
    assert not torch.allclose(out[:, 2], base[:, 2], atol=1e-5)  # frame 3's own prediction sees it (teacher forcing)


def test_later_tokens_in_frame_never_change_earlier_positions(tiny_model):
    clip = random_clip(tiny_model, 1, 3)
    m = tiny_model
    with torch.no_grad():
        fused = m.fuse(clip["ego"], clip["img"])[:, :-1]
        h0 = m.autoregress(m.align(fused, clip["ego"][:, 1:], clip["img"][:, 1:]))
        img2 = clip["img"].clone()
        img2[:, 2, 5:] = (img2[:, 2, 5:] + 3) % m.cfg.codebook_size  # tokens at in-frame positions 3+5.. of frame 2
        h1 = m.autoregress(m.align(fused, clip["ego"][:, 1:], img2[:, 1:]))
    cut = N_EGO + 5  # position cut predicts token 5; its input holds token 4, unchanged
    assert torch.allclose(h0[:, 1, :cut + 1], h1[:, 1, :cut + 1], atol=1e-5)
    assert not torch.allclose(h0[:, 1, cut + 1:], h1[:, 1, cut + 1:], atol=1e-5)
    assert torch.allclose(h0[:, 0], h1[:, 0], atol=1e-5)


def test_posedrop_ego_tokens_cut_from_fusion_attention(tiny_model):
    m = tiny_model
    clip = random_clip(m, 1, 3)
    clip["keep"][:, 1] = False
    other = clip["ego"].clone()
    other[:, 1] = torch.tensor([(v - 1) for v in m.ego_vocab])  # different ego ids on the pose-less frame
    with torch.no_grad():
        a = m.fuse(clip["ego"], clip["img"], clip["keep"])
        b = m.fuse(other, clip["img"], clip["keep"])
    same_frame_img = (a[:, 1, N_EGO:] - b[:, 1, N_EGO:]).abs().max()
    later = (a[:, 2] - b[:, 2]).abs().max()
    assert same_frame_img < 1e-5 and later < 1e-5  # nobody else attends to a pose-less frame's ego tokens
    assert (a[:, 1, :N_EGO] - b[:, 1, :N_EGO]).abs().max() > 1e-4  # (its own ego states still change)


def test_cached_ar_equals_full_recompute():
    torch.manual_seed(1)
    m = DrivingWorldGPT(tiny_config()).eval()
    clip = random_clip(m, 2, 4)
    clip["keep"][0, 1] = False
    clip["ego"][0, 1] = torch.tensor(m.ego_vocab)
    with torch.no_grad():
        full = m.fuse(clip["ego"], clip["img"], clip["keep"])
        prefix = m.new_caches(2)
        x = m.align(full[:, -2:-1], clip["ego"][:, -1:], clip["img"][:, -1:])
        hid = m.autoregress(x)[:, 0]
        inc = torch.stack([prefix.step(x[:, 0, p], p) for p in range(m.n)], 1)
    assert torch.allclose(hid, inc, atol=1e-5)


def test_training_band_limits_one_layer_to_the_window():
    torch.manual_seed(2)
    m = DrivingWorldGPT(tiny_config(fusion_layers=1)).eval()  # one layer: receptive field = the window
    clip = random_clip(m, 1, 5)
    changed = {k: v.clone() for k, v in clip.items()}
    changed["img"][:, 0] = (changed["img"][:, 0] + 1) % m.cfg.codebook_size
    with torch.no_grad():
        a, b = m.fuse(clip["ego"], clip["img"]), m.fuse(changed["ego"], changed["img"])
    assert torch.allclose(a[:, 3:], b[:, 3:], atol=1e-6)  # frames >= 3 no longer see frame 0 (window 3)
    assert not torch.allclose(a[:, 2], b[:, 2], atol=1e-5)


def test_sliding_window_sees_exactly_the_last_w_frames():
    """Stacked banded layers reach fusion_layers x (W - 1) frames back; fuse_window must see W frames, no more."""
    torch.manual_seed(3)
    m = DrivingWorldGPT(tiny_config(fusion_layers=3)).eval()  # window 3; a banded stack would reach 6 frames back
    clip = random_clip(m, 1, 7)
    with torch.no_grad():
        base = m.fuse_window(clip["ego"], clip["img"], clip["keep"])
        for t in range(7):  # change one frame at a time, image and ego
            changed = {k: v.clone() for k, v in clip.items()}
            changed["img"][:, t] = (changed["img"][:, t] + 1) % m.cfg.codebook_size
            changed["ego"][:, t, 0] = (changed["ego"][:, t, 0] + 1) % m.ego_vocab[0]
            out = m.fuse_window(changed["ego"], changed["img"], changed["keep"])
            if t < 7 - 3:
                assert torch.equal(out, base), f"frame {t} is outside the window but changed the fused state"
            else:
                assert not torch.allclose(out, base, atol=1e-5), f"frame {t} is inside the window but ignored"
        banded = m.fuse(clip["ego"], clip["img"])[:, -1]  # the v1 cache's receptive field: frames 1.. through 3 layers
    changed = {k: v.clone() for k, v in clip.items()}
    changed["img"][:, 2] = (changed["img"][:, 2] + 1) % m.cfg.codebook_size
    with torch.no_grad():
        assert not torch.allclose(m.fuse(changed["ego"], changed["img"])[:, -1], banded, atol=1e-5)


def test_window_equals_the_training_clip_view():
    """The state that predicts the next frame at rollout equals the last teacher-forced state of a W+1-frame clip."""
    torch.manual_seed(4)
    m = DrivingWorldGPT(tiny_config()).eval()
    clip = random_clip(m, 2, 9)
    w = m.cfg.context_frames
    with torch.no_grad():
        train_view = m.fuse(clip["ego"][:, -w - 1:], clip["img"][:, -w - 1:])[:, -2]  # clip of W+1 frames
        rollout_view = m.fuse_window(clip["ego"][:, :-1], clip["img"][:, :-1], clip["keep"][:, :-1])
    assert torch.allclose(train_view, rollout_view, atol=1e-5)


def test_paper_layout_and_v1_layout_build_and_differ():
    paper = DrivingWorldGPT(tiny_config())
    v1 = DrivingWorldGPT(tiny_config(fusion_mlp="spatial", head_layers=1, code_embed="table", ego_embed="table"))
    assert hasattr(paper.fusion[0], "mlp_t") and not hasattr(v1.fusion[0], "mlp_t")
    assert isinstance(paper.head_img, torch.nn.Sequential) and isinstance(v1.head_img, torch.nn.Linear)
    assert count_parameters(paper) > count_parameters(v1)


def test_bad_layout_options_are_refused():
    import pytest

    with pytest.raises(ValueError, match="model.code_embed"):
        DrivingWorldGPT(tiny_config(code_embed="onehot"))
    with pytest.raises(ValueError, match="head dim"):
        DrivingWorldGPT(tiny_config(width=30, heads=3))


def test_codebook_init_and_fourier_ego_embedding():
    import pytest

    m = DrivingWorldGPT(tiny_config(code_dim=4))
    vecs = torch.randn(m.cfg.codebook_size, 4)
    m.load_codebook(vecs)
    assert torch.equal(m.emb_img.codebook.weight.data, vecs)
    with pytest.raises(ValueError, match="codebook has shape"):
        m.load_codebook(torch.randn(m.cfg.codebook_size, 5))
    ids = torch.arange(m.ego_vocab[0] + 1)  # every real bin and the null id
    e = m.emb_ego[0](ids)
    assert torch.equal(e[-1], m.emb_ego[0].null.data)  # posedrop null token: its own vector
    assert (torch.cdist(e[:-1], e[:-1]) + torch.eye(len(ids) - 1)).min() > 1e-3  # every bin embeds differently
