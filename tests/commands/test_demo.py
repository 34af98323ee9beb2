"""``worldgen demo``: ``main(DemoLaunchConfig)`` refuses bad settings before starting anything (the server itself:
tests/demo/)."""
import pytest

from worldgen.commands.demo import DemoLaunchConfig, main


def test_bad_settings_fail_before_the_server_starts(tmp_path):
    with pytest.raises(ValueError, match="--max-horizon"):
        main(DemoLaunchConfig(checkpoints=str(tmp_path), max_horizon=0))
    with pytest.raises(FileNotFoundError, match="checkpoints folder not found"):
        main(DemoLaunchConfig(checkpoints=str(tmp_path / "nope")))
    with pytest.raises(ValueError, match="cuda:N"):
        main(DemoLaunchConfig(checkpoints=str(tmp_path), devices="tpu:0"))
