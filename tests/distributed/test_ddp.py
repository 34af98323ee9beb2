"""Multi-process training on CPU (gloo): 2 processes on one node, and 2 "nodes" x 1 process on localhost."""
import subprocess

import pytest

from tests.helpers import ROOT, cli_cmd, free_port, max_weight_diff, run_cli
from worldgen.io import read_json

pytestmark = pytest.mark.slow  # multi-process training

COMMON = ["train", "configs/toy/mlp.yaml", "trainer.progress_bar=false", "trainer.strategy=ddp", "trainer.accelerator=cpu",
          "trainer.max_steps=12", "trainer.loggers=[csv]"]


def _check_ranks(rec):
    # identical weights after DDP all-reduce, and disjoint data shards (12 steps stay inside the first epoch)
    assert max_weight_diff(rec / "weights_rank0.safetensors", rec / "weights_rank1.safetensors") == 0.0
    seen = [set(read_json(rec / f"seen_rank{r}.json")["indices"]) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 12 * 16
    assert not seen[0] & seen[1]


def test_ddp_two_processes_one_node(tmp_path):
    run_cli(*COMMON, f"out_dir={tmp_path}", f"record_dir={tmp_path}/rec", "trainer.devices=2",
            env={"MASTER_PORT": str(free_port())}, timeout=300)
    _check_ranks(tmp_path / "rec")
    assert read_json(tmp_path / "card.json")["global_step"] == 12


def test_two_nodes_one_process_each(tmp_path):
    port = str(free_port())
    procs = []
    for node_rank in (0, 1):
        env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "NODE_RANK": str(node_rank), "LOCAL_RANK": "0"}
        args = [*COMMON, f"out_dir={tmp_path}", f"record_dir={tmp_path}/rec", "trainer.devices=1", "trainer.num_nodes=2"]
        import os
        procs.append(subprocess.Popen(cli_cmd(*args), cwd=ROOT, env={**os.environ, **env},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs[0][-2000:] + outs[1][-2000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outs[1]
    _check_ranks(tmp_path / "rec")


def test_torchrun_launcher_two_processes(tmp_path):
    """The same config under torchrun: Lightning picks up the elastic environment; nothing else changes."""
    import sys
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           "-m", "worldgen.cli", *COMMON, f"out_dir={tmp_path}", f"record_dir={tmp_path}/rec", "trainer.devices=2"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _check_ranks(tmp_path / "rec")
