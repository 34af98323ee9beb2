"""Write ``checkpoints/MANIFEST.json``: sha256 and size of every file of every shipped checkpoint folder.

    python tools/make_checkpoint_manifest.py [--root checkpoints]

Run it after copying trained ``runs/<name>/{config.yaml,model.safetensors,card.json}`` into ``checkpoints/<name>/``;
``worldgen checkpoints verify`` then checks the hashes and loads each checkpoint. Folders holding pickled weights
(.ckpt/.pt/.bin) are refused. The manifest is written atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from worldgen.checkpoints import MANIFEST, build_manifest
from worldgen.io import write_json


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="checkpoints", help="folder with one sub-folder per checkpoint")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"error: {root}: no such folder", file=sys.stderr)
        return 2
    try:
        manifest = build_manifest(root)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_json(root / MANIFEST, manifest)
    total = sum(f["bytes"] for c in manifest["checkpoints"].values() for f in c["files"].values())
    print(f"wrote {root / MANIFEST}: {len(manifest['checkpoints'])} checkpoint(s), {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
