import pytest
import torch

from worldgen.nn.kv_cache import StaticKVCache
from worldgen.nn.rope import AxialRoPE2D


def test_axial_rope_depends_only_on_2d_offset_and_skips_prefix():
    rope = AxialRoPE2D(4, 5, 8, theta=1000.0, n_prefix=2)
    q, k = torch.randn(8), torch.randn(8)
    n = 2 + 20
    qs, ks = rope(q.expand(n, 8).clone()), rope(k.expand(n, 8).clone())
    pos = lambda r, c: 2 + r * 5 + c
    a = qs[pos(1, 1)] @ ks[pos(2, 3)]
    b = qs[pos(2, 0)] @ ks[pos(3, 2)]  # same (1, 2) offset
    c = qs[pos(1, 1)] @ ks[pos(3, 1)]  # different offset
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, c, atol=1e-3)
    assert torch.equal(qs[:2], q.expand(2, 8))  # ego prefix unrotated
    assert torch.allclose(rope(q.expand(3, 8).clone(), start=5), qs[5:8])


def test_rope_needs_dim_divisible_by_4():
    with pytest.raises(ValueError, match="divisible by 4"):
        AxialRoPE2D(2, 2, 6)


def test_static_cache_views_and_position_writes_share_one_buffer():
    c = StaticKVCache(2, 1, 3, 4, 2)
    k_slot, v_slot, k_all, v_all = c.views()[1][2]
    k_slot.copy_(torch.ones(1, 3, 2))
    v_slot.copy_(torch.full((1, 3, 2), 2.0))
    assert k_all.shape == (1, 3, 3, 2) and torch.equal(c.kv[1, :, 0, :, 2], torch.ones(1, 3, 2))
    ks, vs = c.write(0, torch.tensor([3]), torch.full((1, 3, 2), 5.0), torch.full((1, 3, 2), 6.0))
    assert ks.shape == (1, 3, 4, 2) and ks[0, :, 3].eq(5).all() and vs[0, :, 3].eq(6).all()
    assert c.kv[0, :, :, :, :3].eq(0).all() and torch.equal(v_all[0, :, 2], torch.full((3, 2), 2.0))
    with pytest.raises(ValueError, match="outside"):
        c.check(4)
