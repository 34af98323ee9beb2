"""Training: a tiny GPT overfits one batch; the Lightning task trains on shards; generate and benches run."""
import json
from pathlib import Path

import pytest
import torch

from tests.worldmodel.conftest import tiny_config
from worldgen import config as C
from worldgen.data.tokens import TokenClipDataset, episode_ids, make_synthetic_shards
from worldgen.worldmodel.drift import DriftConfig, world_model_loss
from worldgen.worldmodel.model import DrivingWorldGPT

REPO = Path(__file__).resolve().parents[2]


def test_overfits_one_batch(tmp_path):
    root = make_synthetic_shards(tmp_path / "tok", n_episodes=2, n_frames=8, grid=(3, 4), codebook_size=32)
    torch.manual_seed(0)
    model = DrivingWorldGPT(tiny_config(width=48))
    ds = TokenClipDataset(root, episode_ids(root), 4, model.pose_tokenizer.encode)
    batch = {k: torch.stack([ds[i][k] for i in range(4)]) for k in ("img", "ego", "keep")}
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cfg = DriftConfig(masking=False)
    first = None
    for _ in range(120):
        loss, logs = world_model_loss(model, batch, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.15 * first, (first, loss.item())
    assert logs["acc_image"] > 0.9


def _tiny_yaml(tmp_path: Path, root: Path) -> Path:
    cfg = C.read_yaml(REPO / "configs/drivingworld/gpt_tiny.yaml")
    cfg.out_dir = str(tmp_path / "run")
    cfg.trainer.max_steps = 3
    cfg.trainer.val_check_interval = 3
    cfg.trainer.progress_bar = False
    cfg.model.codebook_size = 32
    cfg.model.grid = [3, 4]
    cfg.model.width = 32
    cfg.model.heads = 2
    cfg.model.context_frames = 3
    cfg.data.root = str(root)
    cfg.data.val_episodes = 1
    cfg.data.batch_size = 2
    cfg.data.posedrop_prob = 0.2
    cfg.tokenizer = ""  # the shipped tokenizer has 1024 codes; this toy model has 32
    path = tmp_path / "gpt.yaml"
    from omegaconf import OmegaConf

    path.write_text(OmegaConf.to_yaml(cfg))
    return path


def test_configs_load():
    from worldgen.registry import load_experiment

    tiny = load_experiment(REPO / "configs/drivingworld/gpt_tiny.yaml")
    big = load_experiment(REPO / "configs/drivingworld/gpt_1b.yaml")
    assert tiny.task == big.task == "drivingworld" and big.model.width == 1536 and big.model.pose.yaw_bins == 512
    with pytest.raises(C.ConfigError, match="drift"):
        load_experiment(REPO / "configs/drivingworld/gpt_tiny.yaml", ["drift.nope=1"])


def test_train_generate_and_bench_end_to_end(tmp_path, capsys):
    from worldgen.commands.train import load_experiment, main
    from worldgen.commands.bench.worldmodel import bench_rollout, bench_train
    from worldgen.pipelines.drivingworld import GenerateConfig, generate

    root = make_synthetic_shards(tmp_path / "tok", n_episodes=3, n_frames=10, grid=(3, 4), codebook_size=32,
                                 missing_pose_every=4)
    yaml = _tiny_yaml(tmp_path, root)
    main(load_experiment(yaml), command="test")
    run = tmp_path / "run"
    card = json.loads((run / "card.json").read_text())
    assert card["global_step"] == 3 and "val/loss" in card["metrics"]
    out = tmp_path / "gen" / "roll.mp4"
    summary = generate(GenerateConfig(ckpt=str(run), frames=6, out=str(out), manoeuvre="lane_change_left"))
    assert summary["frames"] == 6 and "lane_change_left" in summary["ego"]
    poses = json.loads((tmp_path / "gen" / "roll.poses.json").read_text())
    assert len(poses["relative_dx_dy_dyaw"]) == 6 and (tmp_path / "gen" / "roll.config.yaml").is_file()
    assert (tmp_path / "gen" / "roll.tokens.safetensors").is_file() and not out.exists()  # tokens-only
    controls = tmp_path / "controls.json"
    controls.write_text(json.dumps({"speed": [20.0] * 3, "yaw_rate": [0.0, 0.1, 0.0]}))
    from worldgen.cli import main as cli

    rc = cli(["generate", "drivingworld", "--ckpt", str(run), "--frames", "3", "--out", str(tmp_path / "c.mp4"),
              "--controls", str(controls), "--top-k", "5", "--context-from", "ep0000"])
    assert rc == 0 and "control file" in json.loads((tmp_path / "c.summary.json").read_text())["ego"]
    assert cli(["generate", "drivingworld", "--ckpt", str(tmp_path / "nope"), "--out", "x.mp4"]) == 2
    from worldgen.worldmodel.drift_eval import evaluate

    ev = evaluate(str(run), str(root), n_val=1, window=3)
    assert [w["start"] for w in ev["windows"]] == [0, 3, 6] and 0 <= ev["windows"][0]["token_acc"] <= 1
    assert ev["windows"][0]["code_js"] >= 0
    r = bench_rollout(str(yaml), frames=6, uncached_frames=1)
    assert r["tokens_identical"] is True and r["speedup"] > 0 and r["peak_rss_mb"] > 0
    t = bench_train(str(yaml), steps=1, batch=2)
    assert t["tokens_per_s"] > 0 and 0 < t["mfu"] and t["flops_per_step"] > 0


def test_init_weights_fine_tunes_a_trained_model_and_refuses_another_architecture(tmp_path):
    from worldgen.commands.train import load_experiment, main
    from worldgen.lit.worldmodel import build
    from worldgen.worldmodel.generate import load_model

    root = make_synthetic_shards(tmp_path / "tok", n_episodes=3, n_frames=10, grid=(3, 4), codebook_size=32)
    main(load_experiment(_tiny_yaml(tmp_path, root)), command="test")
    trained, _ = load_model(tmp_path / "run")
    cfg = load_experiment(_tiny_yaml(tmp_path, root), [f"init_weights={tmp_path / 'run'}", "data.lane_change_repeats=2",
                                                       "drift.changed_weight=3"])
    module, _ = build(cfg)
    for k, v in trained.state_dict().items():
        assert torch.equal(module.model.state_dict()[k], v), k
    other = load_experiment(_tiny_yaml(tmp_path, root), [f"init_weights={tmp_path / 'run'}", "model.width=48"])
    with pytest.raises(ValueError, match="model config differs"):
        build(other)


def test_init_weights_widens_the_temporal_window(tmp_path):
    """Fine-tuning to a longer model.context_frames: the learned offset biases carry over (the widened model gives the
    trained model's logits on clips within the old window), new offsets start from the furthest one; shrinking and
    other architecture changes are refused."""
    from worldgen.commands.train import load_experiment, main
    from worldgen.lit.worldmodel import build
    from worldgen.worldmodel.generate import load_model
    from worldgen.worldmodel.model import widen_window

    root = make_synthetic_shards(tmp_path / "tok", n_episodes=3, n_frames=10, grid=(3, 4), codebook_size=32)
    main(load_experiment(_tiny_yaml(tmp_path, root)), command="test")
    trained, _ = load_model(tmp_path / "run")
    with torch.no_grad():
        trained.fusion[0].time_emb.copy_(torch.randn_like(trained.fusion[0].time_emb))  # distinct columns
    wide = widen_window(trained.state_dict(), 5)
    emb = wide["fusion.0.time_emb"]
    assert emb.shape[-1] == 5 and torch.equal(emb[:, :3], trained.fusion[0].time_emb)
    assert torch.equal(emb[:, 3], emb[:, 2]) and torch.equal(emb[:, 4], emb[:, 2])
    with pytest.raises(ValueError, match="cannot shrink"):
        widen_window(trained.state_dict(), 2)

    cfg = load_experiment(_tiny_yaml(tmp_path, root), [f"init_weights={tmp_path / 'run'}", "model.context_frames=5"])
    module, _ = build(cfg)
    model = module.model.eval()
    assert model.fusion[1].time_emb.shape[-1] == 5
    g = torch.Generator().manual_seed(0)
    img, ego = torch.randint(0, 32, (2, 3, 12), generator=g), torch.randint(0, 32, (2, 3, 3), generator=g)
    trained = load_model(tmp_path / "run")[0].eval()
    with torch.no_grad():
        assert torch.allclose(model(ego, img)[1], trained(ego, img)[1], atol=1e-5)  # 3 frames: inside both windows
    other = load_experiment(_tiny_yaml(tmp_path, root), [f"init_weights={tmp_path / 'run'}", "model.context_frames=5",
                                                         "model.width=48"])
    with pytest.raises(ValueError, match="model config differs"):
        build(other)
