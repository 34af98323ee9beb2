import json

import numpy as np
import pytest

from worldgen.eval.plots import write_result
from worldgen.eval.protocols import Options, evaluate, fvd_drift, prefix_lengths

from .helpers import SIZE, moving_videos, random_videos

pytestmark = pytest.mark.filterwarnings("ignore:Fréchet distance")  # tiny N < 400 features, by design here

LENGTHS = {"fvd16": 20, "fvd128": 128, "fvd128_s8": 125, "block16": 48, "drift": 48, "prefix": 48}


@pytest.mark.parametrize("protocol", sorted(LENGTHS))
def test_each_protocol_end_to_end(protocol, detector, tmp_path):
    t = LENGTHS[protocol]
    n = 2 if protocol == "fvd128" else 3
    real, fake = moving_videos(n, t, 0), random_videos(n, t, 1)
    res = evaluate(real, fake, protocol, detector, seeds=(0, 1), options=Options(progress=False))
    assert res["protocol"] == protocol and res["n_real"] == res["n_fake"] == n
    assert res["fvd"] > 0 and np.isfinite(res["fvd_std"]) and len(res["fvd_per_seed"]) == 2
    assert res["comparable_to_published"] is False and res["detector"]["comparable_to_published"] is False
    assert res["detector"]["resolution"] == SIZE and len(res["detector"]["weights_sha256"]) == 64
    assert res["clip"]["stride"] == (8 if protocol == "fvd128_s8" else 1)
    assert res["real"]["resolutions"] == [[32, 32]] and res["seeds"] == [0, 1]
    assert set(res["runs"][0]["real_offsets"]) == {f"real[{i}]" for i in range(n)}
    assert any("N=" in w for w in res["warnings"])
    expected_x = {"block16": [0, 16, 32], "drift": [0, 16, 32], "prefix": [16, 32, 48]}.get(protocol)
    if expected_x:
        assert res["curve"]["x"] == expected_x and len(res["curve"]["mean"]) == len(expected_x)
    out = write_result(res, tmp_path / f"{protocol}.json")
    saved = json.loads(out.read_text())
    assert saved["fvd"] == pytest.approx(res["fvd"])
    assert (tmp_path / f"{protocol}.png").is_file() == bool(expected_x)


def test_identical_sets_give_zero(detector):
    v = moving_videos(4, 16, 3)
    res = evaluate(v, v.copy(), "fvd16", detector, options=Options(offsets="start", progress=False))
    assert abs(res["fvd"]) < 1e-6


@pytest.mark.parametrize("clips", [1, 3])
def test_identical_sets_give_zero_with_random_offsets(detector, clips):
    """Offsets come from the seed and each video's content, not its side or place: a set against itself (even
    reordered) is 0, and every video gets the same clips on both sides."""
    v = list(moving_videos(4, 40, 3))
    res = evaluate(v, v[::-1], "fvd16", detector, seeds=(0, 1),
                   options=Options(offsets="random", clips_per_video=clips, progress=False))
    assert abs(res["fvd"]) < 1e-6
    for run in res["runs"]:
        real, fake = run["real_offsets"], run["fake_offsets"]
        assert all(real[f"real[{i}]"] == fake[f"fake[{3 - i}]"] for i in range(4))
    assert len({tuple(o) for o in res["runs"][0]["real_offsets"].values()}) > 1  # still random across videos


def test_fvd_separates_distributions(detector):
    real = moving_videos(6, 16, 0)
    same = evaluate(real, moving_videos(6, 16, 1), "fvd16", detector, options=Options(progress=False))["fvd"]
    noise = evaluate(real, random_videos(6, 16, 2), "fvd16", detector, options=Options(progress=False))["fvd"]
    assert noise > 2 * same > 0


def test_block16_ignores_blocks_not_all_videos_have(detector):
    real = [moving_videos(1, 48, 0)[0], moving_videos(1, 32, 1)[0]]
    fake = random_videos(2, 48, 2)
    res = evaluate(real, fake, "block16", detector, options=Options(progress=False))
    assert res["curve"]["x"] == [0, 16] and res["real"]["frames_min"] == 32


def test_seeds_choose_offsets_deterministically(detector):
    real, fake = moving_videos(3, 40, 0), moving_videos(3, 40, 1)
    a = evaluate(real, fake, "fvd16", detector, seeds=(0, 1), options=Options(progress=False))
    b = evaluate(real, fake, "fvd16", detector, seeds=(0,), options=Options(progress=False))
    assert a["runs"][0]["real_offsets"] == b["runs"][0]["real_offsets"]
    assert a["runs"][0]["real_offsets"] != a["runs"][1]["real_offsets"]
    assert a["fvd_per_seed"][0] == b["fvd"]
    assert a["fvd_std"] == pytest.approx(np.std(a["fvd_per_seed"], ddof=1))


def test_seed_independent_features_are_extracted_once(detector, monkeypatch):
    real, fake = moving_videos(2, 16, 0), moving_videos(2, 32, 1)
    clips, forward = [], detector.forward
    monkeypatch.setattr(detector, "forward", lambda x: clips.append(len(x)) or forward(x))
    res = evaluate(real, fake, "drift", detector, seeds=(0, 1, 2), options=Options(progress=False))
    assert [r["n_fake_clips"] for r in res["runs"]] == [4, 4, 4]
    assert sum(clips) == 3 * 2 + 4  # the real reference per seed; the generated windows once
    alone = evaluate(real, fake, "drift", detector, seeds=(1,), options=Options(progress=False))
    assert alone["runs"][0]["values"] == pytest.approx(res["runs"][1]["values"], rel=1e-9)


def test_short_videos_raise_clear_errors(detector):
    with pytest.raises(ValueError, match=r"fake\[1\]: 12 frames, but protocol fvd16 needs clips spanning 16"):
        evaluate(moving_videos(2, 16, 0), [random_videos(1, 16, 1)[0], random_videos(1, 12, 1)[0]], "fvd16",
                 detector, options=Options(progress=False))
    with pytest.raises(ValueError, match="needs clips spanning 121"):
        evaluate(moving_videos(2, 100, 0), moving_videos(2, 100, 1), "fvd128_s8", detector)
    with pytest.raises(ValueError, match="too short for I3D"):
        fvd_drift(moving_videos(2, 16, 0), moving_videos(2, 16, 1), window=8, detector=detector)
    with pytest.raises(ValueError, match="protocol 'fvd17'"):
        evaluate(moving_videos(2, 16, 0), moving_videos(2, 16, 1), "fvd17", detector)


def test_fvd_drift_api_with_float_input_stride_and_horizon(detector, tmp_path):
    real = moving_videos(3, 16, 0)
    fake = moving_videos(3, 64, 1).astype(np.float32) / 255.0
    res = fvd_drift(real, fake, window=16, stride=8, detector=detector, horizon=40, input_range=(0, 1),
                    out=tmp_path / "drift.json")
    assert res["curve"]["x"] == [0, 8, 16, 24] and res["options"]["window_stride"] == 8
    assert res["runs"][0]["fake_offsets"]["fake[0]"] == [0, 8, 16, 24]
    assert (tmp_path / "drift.png").stat().st_size > 1000 and res["plot"] == "drift.png"
    with pytest.raises(ValueError, match="input_range"):
        fvd_drift(real, fake, detector=detector)  # float frames without a declared range


def test_prefix_lengths_double_then_end_at_the_horizon():
    assert prefix_lengths(last_window=32, span=16) == [16, 32, 48]
    assert prefix_lengths(last_window=112, span=16) == [16, 32, 64, 128]
    assert prefix_lengths(last_window=0, span=16) == [16]
