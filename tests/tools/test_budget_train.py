"""tools/budget_train.py: the probe sets trainer.max_steps from the budget, the run trains exactly that many steps."""
import importlib.util
import json
from pathlib import Path

import pytest

from tests.worldmodel.test_train import _tiny_yaml
from worldgen.data.tokens import make_synthetic_shards

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("budget_train", ROOT / "tools/budget_train.py")
budget_train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(budget_train)


@pytest.mark.slow
def test_budget_sets_max_steps_and_the_run_honours_it(tmp_path, capsys):
    root = make_synthetic_shards(tmp_path / "tok", n_episodes=3, n_frames=10, grid=(3, 4), codebook_size=32)
    yaml = _tiny_yaml(tmp_path, root)
    with pytest.raises(SystemExit, match="budget too small"):
        budget_train.main([str(yaml), "--budget-s", "1", "--probe-steps", "12", "--margin-s", "0"])
    assert not (tmp_path / "run").exists()  # the probe writes nothing
    assert budget_train.main([str(yaml), "--budget-s", "40", "--probe-steps", "20", "--margin-s", "5",
                              "trainer.val_check_interval=4", "trainer.log_every_n_steps=50"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    steps = lines[0]["max_steps"]
    assert lines[0]["probe"]["step_s"] > 0 and steps >= 100
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert card["global_step"] == steps and f"trainer.max_steps={steps}" in card["command"]
