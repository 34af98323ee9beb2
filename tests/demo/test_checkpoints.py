"""Shipped-checkpoint safety: the manifest tool, `worldgen checkpoints verify`, and where checkpoints may come from."""
from __future__ import annotations

import shutil

import pytest

from tests.helpers import run_cli
from worldgen import checkpoints as C


@pytest.fixture
def shipped(tiny, tmp_path):
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny["checkpoints"], root)
    from tools.make_checkpoint_manifest import main

    assert main(["--root", str(root)]) == 0
    return root


@pytest.mark.slow  # subprocess
def test_manifest_lists_every_file_and_verify_loads_each(shipped):
    import json

    manifest = json.loads((shipped / C.MANIFEST).read_text())
    assert {"tokenizer-tiny", "gpt-tiny"} <= set(manifest["checkpoints"])
    assert set(manifest["checkpoints"]["gpt-tiny"]["files"]) == {"config.yaml", "model.safetensors", "card.json"}
    report = C.verify(shipped)
    assert report["gpt-tiny"]["task"] == "drivingworld" and report["gpt-tiny"]["params"] > 0
    assert report["tokenizer-tiny"]["params"] > 0
    out = run_cli("checkpoints", "verify", "--root", str(shipped), "--no-load").stdout
    assert f"{len(manifest['checkpoints'])} checkpoint(s) verified" in out


@pytest.mark.slow  # subprocess
def test_verify_names_a_tampered_or_missing_file(shipped):
    weights = shipped / "gpt-tiny" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    (shipped / "tokenizer-tiny" / "card.json").unlink()
    with pytest.raises(C.CheckpointError) as e:
        C.verify(shipped)
    assert "gpt-tiny/model.safetensors: sha256 differs" in str(e.value)
    assert "tokenizer-tiny/card.json: missing" in str(e.value)
    proc = run_cli("checkpoints", "verify", "--root", str(shipped), check=False)
    assert proc.returncode == 2 and "sha256 differs" in proc.stderr and "Traceback" not in proc.stderr


def test_pickles_and_paths_outside_the_root_are_refused(shipped, tmp_path):
    (shipped / "gpt-tiny" / "last.ckpt").write_bytes(b"not allowed")
    with pytest.raises(C.CheckpointError, match="pickled"):
        C.load_checkpoint(shipped / "gpt-tiny")
    assert C.resolve("tokenizer-tiny", shipped) == (shipped / "tokenizer-tiny").resolve()
    for bad in ("../checkpoints", "https://example.org/model", "no-such-model"):
        with pytest.raises(C.CheckpointError, match="not a folder"):
            C.resolve(bad, tmp_path / "elsewhere")
    with pytest.raises(C.CheckpointError, match="missing model.safetensors"):
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "config.yaml").write_text("task: drivingworld\n")
        C.load_checkpoint(tmp_path / "empty")
