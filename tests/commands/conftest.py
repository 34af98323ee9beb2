"""Tiny inputs for the commands' ``main(cfg)`` functions: synthetic episodes, and checkpoint folders of seeded random
tiny models (a VQ tokenizer, a DrivingWorld GPT + token shards, an ART-V model, a PGD model, a policy), each written
the way its training task writes it. Seconds on a CPU; nothing is trained."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from worldgen import config as C
from worldgen.io import save_weights

SIZE = (16, 32)  # frame height, width of every video fixture


def save_run(folder: Path, cfg, module: torch.nn.Module) -> Path:
    """``config.yaml`` + ``model.safetensors`` as ``worldgen train`` writes them."""
    C.save(cfg, folder / "config.yaml")
    save_weights(folder / "model.safetensors", module.state_dict(), {"task": cfg.task})
    return folder


@pytest.fixture(scope="module")
def episodes(tmp_path_factory) -> Path:
    from worldgen.data.synthetic import make_synthetic_episodes

    root = tmp_path_factory.mktemp("episodes") / "data"
    make_synthetic_episodes(root, n_episodes=3, n_frames=16, size=SIZE, seed=0)
    return root


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    from tests.tokenizer.conftest import _tiny_vq_config
    from worldgen.lit.tokenizer import Config
    from worldgen.tokenizer import VQVideoTokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    torch.manual_seed(0)
    return save_run(folder, Config(model=_tiny_vq_config(), out_dir=str(folder)), VQVideoTokenizer(_tiny_vq_config()))


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory) -> tuple[Path, Path]:
    """(GPT run folder, token shard folder) for a 3x4 grid and 32 codes."""
    from tests.worldmodel.conftest import tiny_config
    from worldgen.data.tokens import make_synthetic_shards
    from worldgen.lit.worldmodel import Config
    from worldgen.worldmodel.model import DrivingWorldGPT

    root = tmp_path_factory.mktemp("gpt")
    tokens = make_synthetic_shards(root / "tokens", n_episodes=3, n_frames=10, grid=(3, 4), codebook_size=32)
    torch.manual_seed(0)
    run = root / "run"
    save_run(run, Config(model=tiny_config(), out_dir=str(run)), DrivingWorldGPT(tiny_config()))
    return run, tokens


@pytest.fixture(scope="module")
def artv_dir(tmp_path_factory) -> Path:
    from tests.artv.test_model import tiny_cfg
    from worldgen.artv.model import ARTV
    from worldgen.lit.artv import Config

    folder = tmp_path_factory.mktemp("artv")
    torch.manual_seed(0)
    cfg = Config(model=tiny_cfg(), out_dir=str(folder))  # data.val_fraction 0.1 of 3 episodes: 1 held out
    return save_run(folder, cfg, ARTV(cfg.model))


@pytest.fixture(scope="module")
def offline(tmp_path_factory) -> dict:
    """A real random-policy dataset of the cheap environment, a target policy and a PGD model folder."""
    from worldgen.config import to_dict
    from worldgen.data.offline_rl import save_dataset
    from worldgen.io import write_json
    from worldgen.rl.envs import CHEAP_ENV
    from worldgen.rl.evaluation import rollout_dataset
    from worldgen.rl.nets import ActorConfig, DeterministicActor
    from worldgen.rl.pgd import PGDModelConfig, SamplerConfig, TrajectoryDiffusion
    from worldgen.rl.policy import save_policy
    from worldgen.rl.unet1d import UNet1DConfig

    root = tmp_path_factory.mktemp("offline")
    real = rollout_dataset(None, CHEAP_ENV, 60, seed=0, metadata={"env_id": CHEAP_ENV})
    save_dataset(root / "real.hdf5", real)
    torch.manual_seed(0)
    save_policy(root / "policy", DeterministicActor(ActorConfig(real.obs_dim, real.act_dim, [16, 16])))
    cfg = PGDModelConfig(horizon=8, unet=UNet1DConfig(features=16, n_blocks=2), sampler=SamplerConfig(n_steps=2))
    model = TrajectoryDiffusion(cfg, real.obs_dim, real.act_dim)
    pgd = root / "pgd"
    save_weights(pgd / "model.safetensors", model.state_dict())
    write_json(pgd / "pgd.json", {"obs_dim": real.obs_dim, "act_dim": real.act_dim, "horizon": cfg.horizon,
                                  "env_id": CHEAP_ENV, "model": to_dict(cfg)})
    return {"env": CHEAP_ENV, "real": root / "real.hdf5", "policy": root / "policy", "pgd": pgd}
