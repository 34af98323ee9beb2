"""Small helpers shared by tests: run the CLI in a subprocess, find a free port, compare weight files."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "worldgen.cli", *args]


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(cli_cmd(*args), cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"worldgen {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def max_weight_diff(path_a: str | Path, path_b: str | Path) -> float:
    from worldgen.io import load_weights

    a, b = load_weights(path_a), load_weights(path_b)
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)
