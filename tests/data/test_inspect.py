"""``worldgen data inspect``: counts, durations, pose statistics, contact sheet; bad episodes listed, not fatal."""
import json

import numpy as np
import pytest
from PIL import Image

from worldgen.cli import main as cli_main
from worldgen.data.inspect import main
from worldgen.data.synthetic import make_synthetic_episodes


@pytest.fixture
def ds(tmp_path):
    make_synthetic_episodes(tmp_path / "ds", 3, 10, size=(32, 64), seed=2)
    return tmp_path / "ds"


def test_summary_and_contact_sheet(ds, tmp_path):
    s = main(str(ds), str(tmp_path / "sheet.png"), rows=2, cols=4)
    assert s["episodes"] == 3 and s["frames"] == 30 and s["bad"] == 0 and s["resolution"] == [32, 64]
    assert s["duration_s"]["total"] == pytest.approx(3.0) and s["envs"] == {"synthetic-road": 3}
    assert 1.0 < s["pose_stats"]["dx_forward_m"]["mean"] < 3.0
    sheet = np.asarray(Image.open(tmp_path / "sheet.png"))
    assert sheet.shape == (2 + 2 * 34, 2 + 4 * 66, 3) and sheet.std() > 10


def test_cli_reports_bad_episode(ds, capsys):
    (next((ds / "episodes").iterdir()) / "meta.json").unlink()
    assert cli_main(["data", "inspect", str(ds)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["episodes"] == 2 and out["bad"] == 1 and "missing sidecar" in out["bad_files"][0]["problem"]
    assert (ds / "contact_sheet.png").is_file()


def test_cli_missing_folder(tmp_path, capsys):
    assert cli_main(["data", "inspect", str(tmp_path / "nope")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
