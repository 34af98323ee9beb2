"""`worldgen demo` command line: options, safe defaults and clear errors (the server itself: test_app.py)."""
from __future__ import annotations

import pytest

from tests.helpers import run_cli

pytestmark = pytest.mark.slow  # subprocess


def test_demo_help_lists_the_options_and_defaults_to_localhost():
    out = run_cli("demo", "--help").stdout
    for opt in ("--host", "--port", "--devices", "--checkpoints", "--data", "--i3d", "--max-horizon"):
        assert opt in out
    assert "127.0.0.1" in out


def test_demo_refuses_missing_folders_with_a_message(tmp_path):
    proc = run_cli("demo", "--checkpoints", str(tmp_path / "nope"), check=False, timeout=120)
    assert proc.returncode == 2 and "checkpoints folder not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("demo", "--checkpoints", str(tmp_path), "--devices", "tpu:0", check=False, timeout=120)
    assert proc.returncode == 2 and "is not 'cpu' or 'cuda:N'" in proc.stderr
