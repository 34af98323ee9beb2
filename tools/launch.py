"""Write the launch command for running one worldgen config on many GPUs / nodes: torchrun or a SLURM batch script.

    python tools/launch.py torchrun --nodes 2 --gpus-per-node 8 --master-addr node0 configs/x.yaml key=value
    python tools/launch.py slurm --nodes 4 --gpus-per-node 8 --time 24:00:00 configs/x.yaml > job.sbatch

Only launcher flags differ between a laptop and a cluster: the config gets ``trainer.devices``, ``trainer.num_nodes``
and ``trainer.strategy`` overrides; Lightning reads ranks from torchrun's or SLURM's environment.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import Sequence


def trainer_overrides(args: argparse.Namespace) -> list[str]:
    return [f"trainer.devices={args.gpus_per_node}", f"trainer.num_nodes={args.nodes}",
            f"trainer.strategy={args.strategy}", "trainer.accelerator=gpu"]


def torchrun_command(args: argparse.Namespace) -> str:
    cmd = ["torchrun", f"--nnodes={args.nodes}", f"--nproc_per_node={args.gpus_per_node}",
           "--node_rank=${NODE_RANK:-0}", f"--master_addr={args.master_addr}", f"--master_port={args.master_port}",
           "-m", "worldgen.cli", "train", args.config, *trainer_overrides(args), *args.overrides]
    return " ".join(c if c.startswith("--node_rank") else shlex.quote(c) for c in cmd)


def slurm_script(args: argparse.Namespace) -> str:
    train = " ".join(shlex.quote(c) for c in ["worldgen", "train", args.config, *trainer_overrides(args), *args.overrides])
    return "\n".join([
        "#!/bin/bash",
        f"#SBATCH --job-name={args.job_name}",
        f"#SBATCH --nodes={args.nodes}",
        f"#SBATCH --ntasks-per-node={args.gpus_per_node}",
        f"#SBATCH --gpus-per-node={args.gpus_per_node}",
        f"#SBATCH --cpus-per-task={args.cpus_per_task}",
        f"#SBATCH --time={args.time}",
        "#SBATCH --signal=SIGUSR1@90  # Lightning saves and requeues on this signal",
        "#SBATCH --requeue",
        "set -euo pipefail",
        "# one task per GPU; Lightning's SLURMEnvironment reads SLURM_PROCID / SLURM_NODEID / SLURM_NTASKS",
        f"srun {train} trainer.resume=last",
        "",
    ])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("launcher", choices=["torchrun", "slurm"])
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--strategy", default="ddp", choices=["ddp", "fsdp", "deepspeed"])
    p.add_argument("--master-addr", default="127.0.0.1")
    p.add_argument("--master-port", type=int, default=29500)
    p.add_argument("--job-name", default="worldgen")
    p.add_argument("--time", default="24:00:00")
    p.add_argument("--cpus-per-task", type=int, default=8)
    return p


def main(argv: Sequence[str] | None = None) -> str:
    args = build_parser().parse_args(argv)
    text = torchrun_command(args) if args.launcher == "torchrun" else slurm_script(args)
    print(text)
    return text


if __name__ == "__main__":
    main(sys.argv[1:])
