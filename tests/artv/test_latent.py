"""ART·V's optional latent space: the frame autoencoder, its latent scale, ART·V training + generation on latents."""
import pytest
import torch

from worldgen.artv.autoencoder import (FrameAE, FrameAEConfig, calibrate, frame_ae_loss, load_autoencoder,
                                       save_autoencoder)
from worldgen.artv.generate import GenerateOptions, rollout
from worldgen.artv.model import ARTV, FrameCodec, LatentConfig, build_codec, check_codec, make_cond

from tests.artv.test_model import H, W, perturb_outputs, tiny_cfg


def tiny_ae_cfg(**kw) -> FrameAEConfig:
    return FrameAEConfig(**{"frame_size": [H, W], "latent_channels": 4, "base": 8, "mults": [1, 2], "groups": 4,
                            "blocks_per_level": 1, **kw})


def smooth_frames(n: int, seed: int) -> torch.Tensor:
    """Low-frequency random frames in [-1, 1] (learnable by a tiny AE in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, H // 4, W // 4, generator=g)
    return torch.tanh(torch.nn.functional.interpolate(low, size=(H, W), mode="bilinear", align_corners=False))


@pytest.mark.parametrize("variational", [True, False])
def test_ae_shapes_and_overfit(variational):
    torch.manual_seed(0)
    ae = FrameAE(tiny_ae_cfg(variational=variational))
    x = smooth_frames(4, 0)
    mu, logvar = ae.encode(x)
    assert mu.shape == (4, 4, H // 2, W // 2) and ae.decode(mu).shape == x.shape
    assert (logvar is not None) == variational
    with pytest.raises(ValueError, match="divisible by 2"):
        ae.encode(torch.zeros(1, 3, 15, 32))
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    first = frame_ae_loss(ae, x, sample=False)[1]["mse"]
    g = torch.Generator().manual_seed(0)
    for _ in range(40):
        loss, logs = frame_ae_loss(ae, x, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(logs) >= {"loss", "l1", "mse", "psnr"} and ("kl" in logs) == variational
    assert frame_ae_loss(ae, x, sample=False)[1]["mse"] < 0.5 * first


def test_latent_scale_calibration_and_round_trip(tmp_path):
    torch.manual_seed(0)
    ae = FrameAE(tiny_ae_cfg()).eval().requires_grad_(False)
    raw = ae.encode(smooth_frames(8, 1))[0]
    assert abs(float(raw.std()) - 1) > 0.3  # an uncalibrated random encoder is far from unit std
    shift, scale = calibrate(ae, [smooth_frames(8, s) for s in (2, 3, 4)])
    assert ae.cfg.latent_scale == pytest.approx(scale) and float(ae.latent_scale) == pytest.approx(scale)
    z = ae.encode_latent(smooth_frames(16, 5))  # held-out frames of the same distribution
    assert abs(float(z.std()) - 1) < 0.15 and abs(float(z.mean())) < 0.15
    x = smooth_frames(2, 6)
    torch.testing.assert_close(ae.decode_latent(ae.encode_latent(x)), ae.decode(ae.encode(x)[0]).clamp(-1, 1))
    back = load_autoencoder(save_autoencoder(tmp_path / "ae", ae))
    assert back.cfg.latent_scale == pytest.approx(scale) and not any(p.requires_grad for p in back.parameters())
    torch.testing.assert_close(back.encode_latent(x), ae.encode_latent(x))
    with pytest.raises(FileNotFoundError, match="frame_ae"):
        load_autoencoder(tmp_path / "nope")


def latent_cfg(ae_dir: str = "ae"):
    return tiny_cfg(latent=LatentConfig(autoencoder=str(ae_dir), channels=4, factor=2), sigma_data=1.0)


def test_latent_denoiser_shapes_and_mask_blend_in_latent_space():
    model = ARTV(latent_cfg())
    perturb_outputs(model)
    b, shape = 2, (4, H // 2, W // 2)
    assert latent_cfg().state_shape() == shape and model.net.unet.conv_in.in_channels == 12
    g = torch.Generator().manual_seed(0)
    prev, anchor = torch.randn(b, *shape, generator=g), torch.randn(b, *shape, generator=g)
    cond = make_cond(prev, anchor, None, None, b=b, shape=shape, device="cpu")
    out, extras = model(torch.randn(b, *shape, generator=g), torch.tensor([0.5, 2.0]), cond)
    m = extras["mask"]
    assert out.shape == (b, *shape) and m.shape == (b, 1, H // 2, W // 2)
    torch.testing.assert_close(out, m * prev + (1 - m) * extras["x0_theta"])
    with pytest.raises(ValueError, match="divisible by model.latent.factor"):
        cfg = tiny_cfg(latent=LatentConfig(autoencoder="x", factor=2))
        cfg.frame_size = [15, 32]
        cfg.state_shape()


@pytest.fixture(scope="module")
def ae_dir(tmp_path_factory):
    """A seeded random-weight autoencoder folder, calibrated on synthetic frames (factor 2, 4 latent channels)."""
    torch.manual_seed(0)
    ae = FrameAE(tiny_ae_cfg())
    calibrate(ae.eval(), [smooth_frames(8, 7)])
    return save_autoencoder(tmp_path_factory.mktemp("frame_ae") / "ae", ae)


def test_codec_checks(ae_dir):
    codec = build_codec(latent_cfg(ae_dir))
    assert codec.is_latent and codec.encode(smooth_frames(1, 0)).shape == (1, 4, H // 2, W // 2)
    with pytest.raises(ValueError, match="latent space and needs its frame autoencoder"):
        check_codec(latent_cfg(ae_dir), None)
    with pytest.raises(ValueError, match="pixel space"):
        check_codec(tiny_cfg(), codec)
    with pytest.raises(ValueError, match="latent channels"):
        build_codec(tiny_cfg(latent=LatentConfig(autoencoder=str(ae_dir), channels=8, factor=2)))
    with pytest.raises(FileNotFoundError, match="no such frame_ae"):
        build_codec(latent_cfg("/nonexistent/ae"))
    x = torch.randn(1, 3, 2, H, W)
    assert FrameCodec().decode_video(x) is x  # pixel mode is the identity


def test_latent_rollout_decodes_pixels_and_is_seeded(ae_dir):
    torch.manual_seed(0)
    model = ARTV(latent_cfg(ae_dir))
    perturb_outputs(model)
    codec = build_codec(model.cfg)
    img = smooth_frames(2, 9)
    opts = GenerateOptions(frames=3, steps=2, cfg_text=1.0, cfg_image=1.5, seed=1)
    a = rollout(model, lambda i: (None, None), 3, opts, first=img, progress=False, codec=codec)
    b = rollout(model, lambda i: (None, None), 3, opts, first=img, progress=False, codec=codec)
    assert a.shape == (2, 3, 3, H, W) and torch.equal(a, b) and a.abs().max() <= 1
    assert torch.equal(a[:, :, 0], img)  # frame 0 is the image prompt itself, not its reconstruction
    with pytest.raises(ValueError, match="latent space"):
        rollout(model, lambda i: (None, None), 2, opts, first=img, progress=False)


def test_frame_ae_task_trains_and_stores_scale(tmp_path):
    from worldgen.config import load, read_yaml
    from worldgen.data.synthetic import make_synthetic_episodes
    from worldgen.lit.frame_ae import Config
    from worldgen.commands.train import main as train_main

    make_synthetic_episodes(tmp_path / "data", 2, 8, size=(32, 64), seed=0)
    cfg = load(Config, "configs/artv/frame_ae_tiny.yaml", [
        f"data.root={tmp_path / 'data'}", f"out_dir={tmp_path / 'run'}", "model.frame_size=[16,32]", "model.base=8",
        "model.groups=4", "trainer.max_steps=2", "trainer.limit_val_batches=1", "data.batch_size=2",
        "data.clip_len=2", "data.stride=2", "data.hop=2", "scale_batches=2", "trainer.progress_bar=false"])
    train_main(cfg, command="test")
    ae = load_autoencoder(tmp_path / "run")
    saved = read_yaml(tmp_path / "run" / "config.yaml")["model"]
    assert ae.cfg.factor == 4 and float(ae.latent_scale) != 1.0
    assert saved["latent_scale"] == pytest.approx(float(ae.latent_scale))


def test_latent_artv_train_and_generate_end_to_end(ae_dir, tmp_path):
    from worldgen.cli import main as cli
    from worldgen.config import load
    from worldgen.data.synthetic import make_synthetic_episodes
    from worldgen.data.video import read_video
    from worldgen.io import read_json
    from worldgen.lit.artv import Config
    from worldgen.commands.train import main as train_main

    make_synthetic_episodes(tmp_path / "data", 3, 8, size=(32, 64), seed=0)
    run = tmp_path / "run"
    cfg = load(Config, "configs/artv/tiny_latent.yaml", [
        f"data.root={tmp_path / 'data'}", f"out_dir={run}", f"model.latent.autoencoder={ae_dir}",
        "model.latent.factor=2", "model.text_encoder=hash", "model.text_dim=16", "model.frame_size=[16,32]",
        "model.unet.base=8", "model.unet.mults=[1,2]", "model.unet.attn_levels=[1]", "model.unet.emb_dim=32",
        "model.unet.head_dim=8", "model.unet.groups=4", "trainer.max_steps=2", "trainer.limit_val_batches=1",
        "data.batch_size=2", "data.val_fraction=0.34", "trainer.progress_bar=false"])
    train_main(cfg, command="test")
    assert read_json(run / "card.json")["global_step"] == 2
    assert (run / "autoencoder" / "model.safetensors").is_file()  # the run folder carries its autoencoder
    out = tmp_path / "latent.mp4"
    rc = cli(["generate", "artv", "--ckpt", str(run), "--prompt", "ego drives", "--prompt", "ego brakes",
              "--switch-at", "2", "--frames", "3", "--steps", "2", "--out", str(out)])
    assert rc == 0 and read_video(out).shape == (3, 16, 32, 3)
    with pytest.raises(ValueError, match="latent channels"):
        train_main(load(Config, "configs/artv/tiny_latent.yaml", [f"model.latent.autoencoder={ae_dir}",
                                                                 "model.latent.factor=2", "model.latent.channels=3"]))
