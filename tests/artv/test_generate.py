"""Frame-by-frame generation: prompt schedules, image/text/both prompts, seeds, and an end-to-end train + CLI run."""

import numpy as np
import pytest
import torch

from worldgen.artv.generate import GenerateOptions, from_uint8, prompt_schedule, rollout, to_uint8
from worldgen.artv.model import ARTV
from worldgen.artv.text import CachedTextEncoder, HashTextEncoder

from tests.artv.test_model import H, W, perturb_outputs, tiny_cfg


def test_prompt_schedule():
    assert prompt_schedule(["a", "b", "c"], [2, 4], 6) == ["a", "a", "b", "b", "c", "c"]
    assert prompt_schedule(["a"], [], 3) == ["a"] * 3
    with pytest.raises(ValueError, match="need 1 --switch-at"):
        prompt_schedule(["a", "b"], [], 5)
    with pytest.raises(ValueError, match="increasing"):
        prompt_schedule(["a", "b", "c"], [4, 2], 6)
    with pytest.raises(ValueError, match="increasing"):
        prompt_schedule(["a", "b"], [9], 6)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ARTV(tiny_cfg())
    perturb_outputs(m)
    with torch.no_grad():
        m.net.unet.conv_in.weight[:, 3:].normal_(std=0.05)
    return m.eval()


def _text_fn(schedule):
    enc = CachedTextEncoder(HashTextEncoder(dim=16), max_tokens=6)
    return lambda i: enc([schedule[i]]) if schedule[i] else (None, None)


def test_rollout_seeds_and_prompt_switch(model):
    opts = GenerateOptions(frames=5, steps=3, cfg_text=2.0, cfg_image=1.5, seed=3)
    one = _text_fn(["red car"] * 5)
    two = _text_fn(prompt_schedule(["red car", "blue truck at night"], [3], 5))
    a = rollout(model, one, 5, opts, progress=False)
    b = rollout(model, one, 5, opts, progress=False)
    c = rollout(model, two, 5, opts, progress=False)
    assert a.shape == (1, 3, 5, H, W) and a.abs().max() <= 1
    assert torch.equal(a, b)
    assert torch.equal(a[:, :, :3], c[:, :, :3]) and not torch.allclose(a[:, :, 3:], c[:, :, 3:])
    d = rollout(model, one, 5, GenerateOptions(frames=5, steps=3, cfg_text=2.0, cfg_image=1.5, seed=4), progress=False)
    assert not torch.allclose(a, d)


def test_rollout_image_only_text_only_and_batch(model):
    img = (np.random.default_rng(0).random((2, H, W, 3)) * 255).astype(np.uint8)
    opts = GenerateOptions(frames=3, steps=2, cfg_text=1.0, cfg_image=2.0)
    video = rollout(model, lambda i: (None, None), 3, opts, first=from_uint8(img), progress=False)
    out = to_uint8(video)
    assert out.shape == (2, 3, H, W, 3) and np.array_equal(out[:, 0], img)  # frame 0 is the image prompt
    text_only = rollout(model, _text_fn(["a road"] * 3), 3, GenerateOptions(frames=3, steps=2), progress=False)
    assert text_only.shape == (1, 3, 3, H, W) and torch.isfinite(text_only).all()


TINY_OVERRIDES = ["model.text_encoder=hash", "model.text_dim=16", "model.frame_size=[16,32]", "model.unet.base=8",
                  "model.unet.emb_dim=32", "model.unet.head_dim=8", "model.unet.groups=4", "trainer.max_steps=3",
                  "trainer.val_check_interval=null", "trainer.limit_val_batches=1", "data.batch_size=2",
                  "data.val_fraction=0.34", "trainer.progress_bar=false", "trainer.precision=32"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Both stages of the tiny YAMLs (shrunk by overrides), a few steps each on synthetic episodes: the stage-1 prior,
    then stage 2 initialised from it."""
    from worldgen.config import load
    from worldgen.data.synthetic import make_synthetic_episodes
    from worldgen.lit.artv import Config
    from worldgen.commands.train import main as train_main

    root = tmp_path_factory.mktemp("artv")
    make_synthetic_episodes(root / "data", 3, 10, size=(32, 64), seed=0)
    common = [f"data.root={root / 'data'}", *TINY_OVERRIDES]
    train_main(load(Config, "configs/artv/prior_tiny.yaml", [f"out_dir={root / 'prior'}", *common]), command="test")
    cfg = load(Config, "configs/artv/tiny.yaml", [f"out_dir={root / 'run'}", f"init_from={root / 'prior'}", *common])
    train_main(cfg, command="test")
    return root / "run"


def test_train_writes_checkpoint_folder(trained):
    from worldgen.io import read_json

    for name in ("config.yaml", "model.safetensors", "card.json"):
        assert (trained / name).is_file()
    assert read_json(trained / "card.json")["global_step"] == 3


def test_cli_multi_prompt_and_image(trained, tmp_path, capsys):
    from worldgen.cli import main as cli
    from worldgen.data.video import read_video

    out = tmp_path / "multi.mp4"
    rc = cli(["generate", "artv", "--ckpt", str(trained), "--prompt", "ego drives straight", "--prompt",
              "ego changes lane", "--switch-at", "3", "--frames", "6", "--steps", "2", "--out", str(out),
              "--seed", "1"])
    assert rc == 0 and read_video(out).shape == (6, 16, 32, 3)
    resolved = (tmp_path / "multi.yaml").read_text()
    assert "ego changes lane" in resolved and "switch_at" in resolved and "steps: 2" in resolved
    out2 = tmp_path / "img.mp4"
    assert cli(["generate", "artv", "--ckpt", str(trained), "--image", str(out), "--frames", "3", "--steps", "2",
                "--out", str(out2)]) == 0
    assert read_video(out2).shape == (3, 16, 32, 3)
    rc = cli(["generate", "artv", "--ckpt", str(trained), "--prompt", "a", "--prompt", "b", "--frames", "4",
              "--out", str(tmp_path / "bad.mp4")])
    assert rc == 2 and "--switch-at" in capsys.readouterr().err
    assert cli(["generate", "artv", "--ckpt", str(tmp_path / "nope"), "--prompt", "a", "--out",
                str(tmp_path / "x.mp4")]) == 2
    assert not (tmp_path / "bad.mp4").exists()


def test_export_from_lightning_checkpoint_matches_final_weights(trained, tmp_path):
    import shutil

    from worldgen.artv.evaluate import export_from_lightning_ckpt
    from worldgen.artv.generate import load_checkpoint
    from worldgen.io import load_weights

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    (run / "model.safetensors").unlink()
    export_from_lightning_ckpt(run)
    a, b = load_weights(trained / "model.safetensors"), load_weights(run / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model, cfg = load_checkpoint(run)
    assert cfg["task"] == "artv" and model.cfg.frame_size == [16, 32]


def test_init_weights_starts_fine_tuning_from_a_trained_model(trained, tmp_path):
    from worldgen.artv.generate import load_checkpoint
    from worldgen.config import load
    from worldgen.lit.artv import Config, build

    common = [f"data.root={trained.parent / 'data'}", *TINY_OVERRIDES, 'init_from=""', f"out_dir={tmp_path}"]
    module, _ = build(load(Config, "configs/artv/tiny.yaml", [f"init_weights={trained}", *common]))
    ref, _ = load_checkpoint(trained)
    assert all(torch.equal(a, b) for a, b in zip(module.model.state_dict().values(), ref.state_dict().values()))
    with pytest.raises(ValueError, match="differs"):
        build(load(Config, "configs/artv/tiny.yaml", [f"init_weights={trained}", *common, "model.use_anchor=false"]))
    with pytest.raises(ValueError, match="not both"):
        build(load(Config, "configs/artv/tiny.yaml", [f"init_weights={trained}", *common,
                                                      f"init_from={trained.parent / 'prior'}"]))
