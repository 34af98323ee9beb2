"""The checkpoints shipped in the repository (``checkpoints/``): every hash matches MANIFEST.json and each loads.

Skipped only while the repository ships no checkpoints (no ``checkpoints/MANIFEST.json``)."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "checkpoints"


@pytest.mark.skipif(not (ROOT / "MANIFEST.json").is_file(), reason="no shipped checkpoints/MANIFEST.json yet")
def test_shipped_checkpoints_verify_and_load():
    from worldgen.checkpoints import SHIPPED, verify

    report = verify(ROOT)
    assert set(SHIPPED) & set(report), report
    assert all(r["hashes_ok"] and r["params"] > 0 for r in report.values())
