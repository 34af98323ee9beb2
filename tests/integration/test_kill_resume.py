"""Fault tolerance: SIGKILL mid-run, resume from last.ckpt, end with the same weights as an uninterrupted run."""
import os
import signal
import subprocess
import time

import pytest

from tests.helpers import ROOT, cli_cmd, max_weight_diff, run_cli
from worldgen.io import load_torch_checkpoint, read_json

pytestmark = pytest.mark.slow  # subprocess training runs

ARGS = ["train", "configs/toy/mlp.yaml", "trainer.progress_bar=false", "trainer.max_steps=60", "trainer.ckpt_every_n_steps=10",
        "trainer.keep_top_k=-1", "trainer.loggers=[csv]"]


def test_kill_and_resume_matches_uninterrupted_run(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    run_cli(*ARGS, f"out_dir={ref}")
    # slow steps so the kill lands mid-epoch (32 steps per epoch), after at least two checkpoints
    proc = subprocess.Popen(cli_cmd(*ARGS, f"out_dir={run}", "slow_step_s=0.15"), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    # step files are written before last.ckpt, so wait for last.ckpt itself (writes are atomic: it always loads whole)
    last = run / "ckpt/last.ckpt"
    while not (last.exists() and load_torch_checkpoint(last)["global_step"] >= 40):
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "model.safetensors").exists(), "run finished before the kill"
    for ckpt in (run / "ckpt").glob("*.ckpt"):  # every checkpoint on disk is whole and loads safely
        load_torch_checkpoint(ckpt)
    saved_step = load_torch_checkpoint(run / "ckpt/last.ckpt")["global_step"]
    assert 40 <= saved_step < 60

    run_cli(*ARGS, f"out_dir={run}", "trainer.resume=last")
    card = read_json(run / "card.json")
    assert card["resumed_from"].endswith("last.ckpt") and card["global_step"] == 60
    assert max_weight_diff(ref / "model.safetensors", run / "model.safetensors") < 1e-6
    assert not list((run / "ckpt").glob(".*.tmp"))


def test_resume_keeps_earlier_logs(tmp_path):
    run_cli(*ARGS, f"out_dir={tmp_path}", "trainer.max_steps=20")
    first = (tmp_path / "logs/version_0/metrics.csv").read_text()
    run_cli(*ARGS, f"out_dir={tmp_path}", "trainer.max_steps=30", "trainer.resume=last")
    assert (tmp_path / "logs/version_0/metrics.csv").read_text() == first
    assert (tmp_path / "logs/version_1/metrics.csv").exists()


def test_resume_in_a_copied_run_folder_keeps_writing_last_ckpt(tmp_path):
    import shutil
    run_cli(*ARGS, f"out_dir={tmp_path}/a", "trainer.max_steps=20")
    shutil.copytree(tmp_path / "a/ckpt", tmp_path / "b/ckpt")
    run_cli(*ARGS, f"out_dir={tmp_path}/b", "trainer.max_steps=30", "trainer.resume=last")
    assert load_torch_checkpoint(tmp_path / "b/ckpt/last.ckpt")["global_step"] == 30
    assert not list((tmp_path / "b/ckpt").glob("last-v*.ckpt"))
