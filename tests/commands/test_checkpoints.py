"""``worldgen checkpoints verify``: ``verify_main(VerifyConfig)`` checks hashes and loads through the registry."""
import shutil

import pytest

from worldgen.checkpoints import MANIFEST, CheckpointError, build_manifest
from worldgen.commands.checkpoints import VerifyConfig, verify_main
from worldgen.io import write_json


def test_verify_main_hashes_and_loads(tokenizer_dir, tmp_path):
    root = tmp_path / "ckpts"
    shutil.copytree(tokenizer_dir, root / "tok")
    write_json(root / MANIFEST, build_manifest(root))
    report = verify_main(VerifyConfig(root=str(root)))
    assert report["tok"]["task"] == "vq_tokenizer" and report["tok"]["hashes_ok"] and report["tok"]["params"] > 0
    (root / "tok" / "config.yaml").write_text((root / "tok" / "config.yaml").read_text() + "\n")
    with pytest.raises(CheckpointError, match="tok/config.yaml"):
        verify_main(VerifyConfig(root=str(root), load=False))
