import numpy as np
import pytest
import torch

from worldgen.eval.detectors import (TorchScriptDetector, load_detector, preprocess, random_detector,
                                     to_detector_input)
from worldgen.eval.i3d import MIN_FRAMES, InceptionI3d, init_random

from .helpers import SIZE, random_videos


def _clips(n=2, t=16, seed=0):
    return to_detector_input(random_videos(n, t, seed))


def test_state_dict_uses_the_pytorch_i3d_names():
    keys = set(InceptionI3d().state_dict())
    for k in ("Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_var", "Conv3d_2c_3x3.conv3d.weight",
              "Mixed_3b.b0.conv3d.weight", "Mixed_3b.b1b.bn.bias", "Mixed_5c.b3b.conv3d.weight",
              "logits.conv3d.weight", "logits.conv3d.bias"):
        assert k in keys
    sd = InceptionI3d().state_dict()
    assert sd["Conv3d_1a_7x7.conv3d.weight"].shape == (64, 3, 7, 7, 7)
    assert sd["logits.conv3d.weight"].shape == (400, 1024, 1, 1, 1)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_state_dict_round_trip_loads_strictly(tmp_path, suffix):
    from worldgen.io import save_weights

    src = init_random(InceptionI3d(), seed=7).eval()
    state = {k: v for k, v in src.state_dict().items() if "num_batches_tracked" not in k}  # old checkpoints lack them
    path = tmp_path / f"i3d{suffix}"
    if suffix == ".pt":
        torch.save({"module." + k: v for k, v in state.items()}, path)  # DataParallel-style prefix
    else:
        save_weights(path, state)
    det = load_detector(f"i3d:{path}", size=SIZE)
    x = _clips()
    with torch.no_grad():
        expected = src.features(preprocess(x, SIZE)).double()
    torch.testing.assert_close(det(x), expected)
    assert det.info()["weights_sha256"] and det.info()["comparable_to_published"] is None


def test_wrongly_shaped_state_dict_gives_a_clear_error(tmp_path):
    state = InceptionI3d().state_dict()
    state["logits.conv3d.weight"] = torch.zeros(157, 1024, 1, 1, 1)  # a Charades head, not Kinetics-400
    state["logits.conv3d.bias"] = torch.zeros(157)
    del state["Mixed_4b.b0.conv3d.weight"]
    state["fc.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as err:
        load_detector(f"i3d:{tmp_path / 'bad.pt'}", size=SIZE)
    msg = str(err.value)
    assert "bad.pt" in msg and "Kinetics-400 Inception-I3D" in msg
    assert "logits.conv3d.weight: file (157, 1024, 1, 1, 1) vs I3D (400, 1024, 1, 1, 1)" in msg
    assert "Mixed_4b.b0.conv3d.weight" in msg and "fc.weight" in msg


def test_missing_weights_say_where_to_get_and_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloads.*i3d_torchscript.pt.*docs/fvd.md"):
        load_detector(f"i3d:{tmp_path / 'nope.pt'}")
    with pytest.raises(ValueError, match="'random' or 'i3d:PATH'"):
        load_detector("inception")


class _FakeScriptedI3D(torch.nn.Module):
    """Same call signature as the StyleGAN-V TorchScript detector; records how it was called in its output."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 400)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = torch.nn.functional.interpolate(x, size=(x.shape[2], 8, 8), mode="trilinear", align_corners=False)
        feats = self.proj(x.mean(dim=(2, 3, 4)))
        flags = torch.tensor([float(rescale), float(resize), float(return_features), float(self.training)])
        return torch.cat([feats[:, :396], flags.expand(x.shape[0], 4)], dim=1)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_detector_is_called_like_stylegan_v(tmp_path):
    module = torch.jit.script(_FakeScriptedI3D())
    module.train()  # the wrapper must put it in eval mode
    module.save(str(tmp_path / "i3d_torchscript.pt"))
    det = load_detector(f"i3d:{tmp_path / 'i3d_torchscript.pt'}")
    assert isinstance(det, TorchScriptDetector) and det.info()["comparable_to_published"] is True
    x = _clips()
    feats = det(x)
    assert feats.shape == (2, 400) and feats.dtype == torch.float64
    assert feats[:, 396:].tolist() == [[1.0, 1.0, 1.0, 0.0]] * 2  # rescale, resize, return_features; eval mode
    assert torch.isfinite(feats).all() and not x.requires_grad


def test_random_detector_is_seeded_labelled_and_in_eval_mode():
    a, b, c = random_detector(0, SIZE), random_detector(0, SIZE), random_detector(1, SIZE)
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    info = a.info()
    assert info["comparable_to_published"] is False and info["resolution"] == SIZE and info["feature_dim"] == 400
    x = _clips()
    fa = a(x)
    torch.testing.assert_close(fa, b(x))
    a.net.train()  # BatchNorm in train mode would change features; the wrapper resets eval mode
    torch.testing.assert_close(a(x), fa)
    assert fa.shape == (2, 400) and fa.std() > 0


def test_uint8_and_declared_float_ranges_agree_and_bad_ranges_raise():
    v = random_videos(1, 16, 1)
    ref = to_detector_input(v)
    assert ref.shape == (1, 3, 16, 32, 32) and ref.dtype == torch.float32
    torch.testing.assert_close(to_detector_input(v / 127.5 - 1.0, input_range=(-1, 1)), ref, atol=1e-3, rtol=0)
    torch.testing.assert_close(to_detector_input(torch.from_numpy(v / 255.0), input_range=(0, 1)), ref,
                               atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="needs a declared input_range"):
        to_detector_input(v.astype(np.float32))
    with pytest.raises(ValueError, match="outside the declared input_range"):
        to_detector_input(v.astype(np.float32), input_range=(-1, 1))  # [0, 255] data declared as [-1, 1]
    with pytest.raises(ValueError, match="outside the declared input_range"):
        to_detector_input(np.full((1, 16, 8, 8, 3), np.nan, np.float32), input_range=(0, 1))
    with pytest.raises(ValueError, match=r"\(b, t, h, w, 3\)"):
        to_detector_input(v[0])


def test_preprocess_resizes_bilinearly_and_scales_to_minus_one_one():
    x = _clips(1, 16)
    y = preprocess(x, 224)
    assert y.shape == (1, 3, 16, 224, 224)
    assert y.min() >= -1.0 and y.max() <= 1.0
    flat = preprocess(torch.full((1, 3, 10, 20, 30), 255.0), 224)
    torch.testing.assert_close(flat, torch.ones_like(flat))


def test_short_clips_give_a_clear_error(detector):
    assert MIN_FRAMES == 9
    assert detector(_clips(1, MIN_FRAMES)).shape == (1, 400)
    with pytest.raises(ValueError, match=f"at least {MIN_FRAMES} frames, got 8"):
        detector(_clips(1, 8))
