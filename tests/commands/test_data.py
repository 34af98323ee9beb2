"""``worldgen data driving|convert|inspect|offline-rl``: each ``main(cfg)`` runs from its dataclass; the CLI
builds the same dataclasses from its arguments."""
import json

import numpy as np
import pytest

from worldgen.cli import main as cli
from worldgen.commands.data import (ConvertConfig, InspectConfig, OfflineRLConfig, convert_main, driving_main,
                                    inspect_main, offline_rl_main, parse_shard, parse_size)


def test_parse_size_and_shard():
    assert parse_size("64x128") == (64, 128) and parse_shard("1/4") == (1, 4)
    with pytest.raises(ValueError, match="--size"):
        parse_size("64")
    with pytest.raises(ValueError, match="--shard"):
        parse_shard("1-4")


def test_driving_main_from_gen_config(tmp_path):
    pytest.importorskip("highway_env")
    from worldgen.data.generate import GenConfig

    s = driving_main(GenConfig(out=str(tmp_path / "d"), episodes=1, frames=3, envs=("highway-fast-v0",),
                               size=(32, 64), progress=False))
    assert s["dataset_episodes"] == 1 and s["frames"] == 3


def test_convert_main(tmp_path):
    from worldgen.data.video import write_video

    rng = np.random.default_rng(0)
    write_video(tmp_path / "rec" / "a.mp4", rng.integers(0, 255, (6, 32, 64, 3), dtype=np.uint8), fps=10)
    s = convert_main(ConvertConfig(src=str(tmp_path / "rec"), out=str(tmp_path / "ds"), size=(16, 32), fps=None))
    assert s["written"] == 1 and s["dataset_episodes"] == 1


def test_inspect_main_and_cli(episodes, tmp_path, capsys):
    s = inspect_main(InspectConfig(root=str(episodes), sheet=str(tmp_path / "sheet.png"), rows=2, cols=3))
    assert not s["bad"] and (tmp_path / "sheet.png").stat().st_size > 0
    with pytest.raises(FileNotFoundError, match="no such dataset"):
        inspect_main(InspectConfig(root=str(tmp_path / "none")))
    capsys.readouterr()
    assert cli(["data", "inspect", str(episodes), "--sheet", str(tmp_path / "s2.png"), "--rows", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["contact_sheet"] == str(tmp_path / "s2.png")


def test_offline_rl_main(tmp_path):
    from worldgen.data.offline_rl import load_dataset
    from worldgen.rl.collect import BehaviourConfig
    from worldgen.rl.envs import CHEAP_ENV

    beh = BehaviourConfig(train_steps=40, start_steps=20, eval_every=20, hidden=[8], eval_episodes=1)
    s = offline_rl_main(OfflineRLConfig(env=CHEAP_ENV, kind="random", out=str(tmp_path / "r.hdf5"), steps=30,
                                        behaviour=beh))
    assert s["transitions"] == 30 and len(load_dataset(tmp_path / "r.hdf5")) == 30
