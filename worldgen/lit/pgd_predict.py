"""Sharded PGD sampling on Lightning's predict loop (``worldgen pgd sample --engine lightning --devices N``).

The same shard plan as the torchrun / SLURM-array path (``worldgen.rl.shards``): Lightning launches the processes
(DDP on CPUs or GPUs, one node or many), and each process's predict loader lists exactly the shards
``plan.shards_of(global_rank, world_size)`` (Lightning's own distributed sampler is switched off: it pads ranks to
equal length by repeating items, which would sample a shard twice). ``predict_step`` samples one shard with its own
seed and writes it as a whole file; shards already on disk are skipped, so a killed job resumes. The files are the
ones the other engines write, so ``worldgen pgd merge`` is unchanged and the merge equals a one-process run.
"""
from __future__ import annotations

from typing import Callable

import lightning as L
import torch
from torch.utils.data import DataLoader


class ShardPredictor(L.LightningModule):
    """Holds the trajectory model (and target policy) as submodules so Lightning puts them on each rank's device;
    ``sample_shard(model, policy, i)`` returns shard ``i`` as a dataset; ``write(i, ds)`` writes it."""

    def __init__(self, model: torch.nn.Module, policy, plan, shard_dir: str, sample_shard: Callable,
                 write: Callable):
        super().__init__()
        self.model, self.policy = model, policy
        self.plan, self.shard_dir, self.sample_shard, self.write = plan, shard_dir, sample_shard, write

    def predict_dataloader(self) -> DataLoader:
        mine = self.plan.shards_of(self.global_rank, self.trainer.world_size)
        return DataLoader(mine, batch_size=1, collate_fn=lambda items: items[0])

    def predict_step(self, i: int, batch_idx: int = 0) -> dict:
        if self.plan.path(self.shard_dir, i).is_file():
            return {"shard": i, "rank": self.global_rank, "written": False, "transitions": 0}
        ds = self.sample_shard(self.model, self.policy, i, self.global_rank, self.trainer.world_size)
        self.write(i, ds)
        return {"shard": i, "rank": self.global_rank, "written": True, "transitions": len(ds)}


def run_predict(module: ShardPredictor, accelerator: str, devices: int, num_nodes: int = 1) -> list[dict]:
    """Run the predict loop (``ddp`` when there is more than one process); this process's per-shard summaries."""
    trainer = L.Trainer(accelerator=accelerator, devices=devices, num_nodes=num_nodes,
                        strategy="ddp" if devices * num_nodes > 1 else "auto", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False, inference_mode=False)  # guidance needs autograd
    out = trainer.predict(module, return_predictions=True)
    return list(out or [])


__all__ = ["ShardPredictor", "run_predict"]
