"""The Trainer factory: one place that turns a ``TrainerConfig`` into a Lightning ``Trainer``.

Same config on a laptop CPU, one GPU, or many nodes: only the launcher changes (see docs/scaling.md). Checkpoints
are written atomically (temp file + rename) and read with ``weights_only=True``; ``resume`` continues at the exact
saved global step with optimizer, scheduler and data-loader state.
"""
from __future__ import annotations

import logging
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from worldgen.config import ConfigError, TrainerConfig

log = logging.getLogger(__name__)

STRATEGIES = ("auto", "ddp", "ddp_spawn", "fsdp", "deepspeed", "single_device")
PRECISIONS = ("32", "32-true", "bf16-mixed", "bf16-true", "16-mixed")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temp file in the same folder and rename it, so no reader ever sees half a file."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Optional[Any] = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def load_checkpoint(self, path: Any, map_location: Optional[Any] = None, weights_only: Optional[bool] = None) -> dict:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found")
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


def _check(cfg: TrainerConfig) -> None:
    if cfg.strategy not in STRATEGIES:
        raise ConfigError(f"trainer.strategy '{cfg.strategy}' is not one of {', '.join(STRATEGIES)}")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"trainer.precision '{cfg.precision}' is not one of {', '.join(PRECISIONS)}")
    if cfg.strategy == "deepspeed":
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            raise ConfigError("trainer.strategy=deepspeed needs `pip install worldgen[deepspeed]`") from None
    bad = [x for x in cfg.loggers if x not in ("csv", "tensorboard")]
    if bad:
        raise ConfigError(f"trainer.loggers: unknown logger(s) {bad}; valid: csv, tensorboard")


def _loggers(cfg: TrainerConfig, out_dir: Path) -> list:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    # version=None: each start (a resume included) logs to a new version_N folder, so earlier logs are never lost
    out = []
    if "csv" in cfg.loggers:
        out.append(CSVLogger(str(out_dir), name="logs", version=None))
    if "tensorboard" in cfg.loggers:
        out.append(TensorBoardLogger(str(out_dir), name="tb", version=None, default_hp_metric=False))
    return out


def checkpoint_dir(out_dir: str | os.PathLike) -> Path:
    return Path(out_dir) / "ckpt"


def build_trainer(cfg: TrainerConfig, out_dir: str | os.PathLike, callbacks: Iterable = ()) -> L.Trainer:
    """A Lightning Trainer configured from ``cfg``; checkpoints under ``out_dir/ckpt``, logs under ``out_dir``."""
    _check(cfg)
    out_dir = Path(out_dir)
    ckpt = ModelCheckpoint(
        dirpath=str(checkpoint_dir(out_dir)), filename="step{step:08d}", auto_insert_metric_name=False,
        every_n_train_steps=cfg.ckpt_every_n_steps, save_last=True, save_top_k=cfg.keep_top_k,
        monitor="step", mode="max", save_on_train_epoch_end=False,
        enable_version_counter=False,  # always overwrite last.ckpt (never last-v1.ckpt, which resume=last would miss)
    )
    cbs = [ckpt, *callbacks]
    if cfg.progress_bar:
        cbs.append(TQDMProgressBar(refresh_rate=max(1, min(cfg.log_every_n_steps, 20))))
    strategy: Any = cfg.strategy
    if cfg.strategy == "ddp" and cfg.accelerator == "cpu":
        from lightning.pytorch.strategies import DDPStrategy

        strategy = DDPStrategy(process_group_backend="gloo")
    try:
        return L.Trainer(
            accelerator=cfg.accelerator, devices=cfg.devices, num_nodes=cfg.num_nodes, strategy=strategy,
            precision=cfg.precision, max_steps=cfg.max_steps, max_epochs=cfg.max_epochs,
            gradient_clip_val=cfg.gradient_clip_val, accumulate_grad_batches=cfg.accumulate_grad_batches,
            log_every_n_steps=cfg.log_every_n_steps, val_check_interval=cfg.val_check_interval,
            limit_val_batches=cfg.limit_val_batches, logger=_loggers(cfg, out_dir) or False, callbacks=cbs,
            enable_progress_bar=cfg.progress_bar, deterministic=cfg.deterministic, default_root_dir=str(out_dir),
            plugins=[AtomicCheckpointIO()], num_sanity_val_steps=cfg.num_sanity_val_steps,
            enable_model_summary=False,
        )
    except (MisconfigurationException, TypeError) as e:  # Lightning's own checks of accelerator, devices, steps ...
        raise ConfigError(f"trainer: {e} (accelerator={cfg.accelerator!r}, devices={cfg.devices!r}, "
                          f"max_steps={cfg.max_steps})") from None


def resolve_resume(cfg: TrainerConfig, out_dir: str | os.PathLike) -> Optional[str]:
    """The checkpoint to resume from: ``None``, ``last`` (out_dir/ckpt/last.ckpt if present) or an explicit path."""
    if not cfg.resume:
        return None
    if cfg.resume == "last":
        last = checkpoint_dir(out_dir) / "last.ckpt"
        if last.is_file():
            return str(last)
        log.warning("trainer.resume=last but %s does not exist yet: starting from scratch", last)
        return None
    path = Path(cfg.resume)
    if not path.is_file():
        raise FileNotFoundError(f"trainer.resume: checkpoint {path} not found")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; a truncated one loses its central directory
        raise ValueError(f"trainer.resume: {path} is not a PyTorch checkpoint (empty, truncated or another format; "
                         f"expected a .ckpt written by worldgen train)")
    return str(path)


def clean_stale_temp_files(out_dir: str | os.PathLike) -> int:
    """Remove temp files a killed run left behind (they are never read); returns how many."""
    d = checkpoint_dir(out_dir)
    n = 0
    if d.is_dir():
        for p in d.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
    return n


__all__ = ["AtomicCheckpointIO", "build_trainer", "resolve_resume", "checkpoint_dir", "clean_stale_temp_files"]
