"""Foreground / vehicle pixel classes and the 1-pixel-tolerance match scores (worldgen.data.foreground)."""
from __future__ import annotations

import torch

from worldgen.data.foreground import (dilate, foreground_mask, foreground_weights, match_scores, vehicle_mask)

ROAD, WHITE, GREEN = (100, 100, 100), (255, 255, 255), (50, 200, 0)


def _frame(h=16, w=32) -> torch.Tensor:
    """uint8-valued ``h w 3`` road with a 2 px marking on row 4-5 and a 3x6 green car at rows 10-12."""
    x = torch.tensor(ROAD).repeat(h, w, 1)
    x[4:6] = torch.tensor(WHITE)
    x[10:13, 8:14] = torch.tensor(GREEN)
    return x


def _video(*frames) -> torch.Tensor:
    """float ``b c t h w`` in [-1, 1] from uint8-valued ``h w 3`` frames."""
    v = torch.stack(frames).float() / 127.5 - 1
    return v.permute(3, 0, 1, 2)[None]


def test_masks_find_markings_and_cars_not_road():
    v = _video(_frame())
    fg, veh = foreground_mask(v)[0, 0], vehicle_mask(v)[0, 0]
    assert fg.sum() == 2 * 32 + 3 * 6 and fg[4:6].all() and fg[10:13, 8:14].all()
    assert veh.sum() == 3 * 6 and not veh[4:6].any(), "white markings are not vehicles"


def test_shapes_follow_the_input_layout():
    v = _video(_frame(), _frame())
    assert foreground_mask(v).shape == (1, 2, 16, 32)
    assert foreground_mask(v[0]).shape == (2, 16, 32)
    assert vehicle_mask(v[0, :, 0]).shape == (16, 32)


def test_scores_tolerate_one_pixel_shift_but_not_erasure():
    real = foreground_mask(_video(_frame()))
    shifted = torch.roll(real, 1, dims=-1)
    s = match_scores(real, shifted, tol=1)
    assert s["precision"] == 1.0 and s["recall"] == 1.0
    assert match_scores(real, torch.roll(real, 1, dims=-2), tol=0)["f1"] < 0.9
    erased = match_scores(real, torch.zeros_like(real))
    assert erased["recall"] == 0.0 and erased["f1"] == 0.0
    assert match_scores(torch.zeros_like(real), torch.zeros_like(real))["f1"] == 1.0


def test_loss_weights_dilate_foreground_and_add_vehicles():
    v = _video(_frame())
    w = foreground_weights(v, weight=4.0, vehicle_weight=10.0)
    assert w.shape == (1, 1, 1, 16, 32)
    assert w[0, 0, 0, 0, 0] == 1.0 and w[0, 0, 0, 3, 0] == 5.0, "one pixel around a marking weighs as the marking"
    assert w[0, 0, 0, 11, 10] == 15.0
    assert dilate(torch.zeros(4, 4, dtype=torch.bool)).sum() == 0
