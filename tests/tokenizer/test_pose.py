import math

import pytest
import torch

from worldgen.tokenizer.pose import PoseTokenizer, PoseTokenizerConfig


def _in_range(tok: PoseTokenizer, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    cols = []
    for name in ("x", "y", "yaw"):  # pose column order: dx, dy, dyaw
        lo, hi = tok.ranges[name]
        cols.append(lo + (hi - lo) * torch.rand(n, generator=g, dtype=torch.float64))
    return torch.stack(cols, -1).float()


@pytest.mark.parametrize("cfg", [PoseTokenizerConfig(), PoseTokenizerConfig([-4, 4], 64, [0, 4], 64, [-0.5, 0.5], 32)])
def test_round_trip_within_half_bin(cfg):
    tok = PoseTokenizer(cfg)
    poses = _in_range(tok, 5000)
    tokens = tok.encode(poses)
    assert tokens.shape == (5000, 3) and tokens.dtype == torch.long
    back, mask = tok.decode(tokens)
    assert mask.all()
    for col, name in enumerate(("x", "y", "yaw")):
        err = (back[:, col].double() - poses[:, col].double()).abs().max().item()
        assert err <= tok.bin_width(name) / 2 + 1e-6, name
    assert sum(tok.clip_counts.values()) == 0


def test_paper_defaults_and_token_order():
    tok = PoseTokenizer()
    assert tok.vocab_sizes == (512, 128, 128)  # yaw, x, y
    assert math.isclose(tok.ranges["yaw"][1], math.radians(8))
    t = tok.encode(torch.tensor([[0.0, 0.0, 0.0]]))
    assert t[0].tolist() == [256, 0, 64]  # yaw centre bin, x first bin, y centre bin


def test_out_of_range_clipped_and_counted():
    tok = PoseTokenizer()
    poses = torch.tensor([[9.0, 0.0, 0.0], [-1.0, 0.7, 0.0], [1.0, 0.0, math.radians(20)], [1.0, 0.0, 0.0]])
    t = tok.encode(poses)
    assert t[0, 1] == 127 and t[1, 1] == 0 and t[1, 2] == 127 and t[2, 0] == 511
    assert tok.clip_counts == {"yaw": 1, "x": 2, "y": 1}
    assert tok.clip_fraction()["x"] == pytest.approx(0.5)


def test_posedrop_null_tokens():
    tok = PoseTokenizer()
    poses = torch.tensor([[1.0, 0.1, 0.01], [float("nan"), 0.0, 0.0], [50.0, 5.0, 1.0]])
    mask = torch.tensor([True, True, False])
    t = tok.encode(poses, mask)
    assert t[1].tolist() == [512, 128, 128] and t[2].tolist() == [512, 128, 128]  # NaN and missing -> null
    assert sum(tok.clip_counts.values()) == 0  # missing poses are not counted as clipped
    back, m = tok.decode(t)
    assert m.tolist() == [True, False, False] and back[1:].abs().sum() == 0


def test_bad_config_rejected():
    with pytest.raises(ValueError, match="x range"):
        PoseTokenizer(PoseTokenizerConfig(x_range_m=[1.0, 1.0]))


def test_odd_bins_centre_a_bin_on_zero_motion():
    """With odd bin counts over a symmetric range (the tiny config), 'no lateral motion, no turn' is exact."""
    from worldgen.config import load
    from worldgen.lit.worldmodel import Config

    from pathlib import Path

    cfg = load(Config, Path(__file__).resolve().parents[2] / "configs/drivingworld/gpt_tiny.yaml")
    tok = PoseTokenizer(cfg.model.pose)
    poses = torch.tensor([[[1.0, 0.0, 0.0]]])
    back, _ = tok.decode(tok.encode(poses, torch.ones(1, 1, dtype=torch.bool)))
    assert abs(float(back[0, 0, 1])) < 1e-9 and abs(float(back[0, 0, 2])) < 1e-9
