"""Loading a trained DrivingWorld GPT and the token context a rollout starts from.

``load_model(folder)`` reads a training output folder (``config.yaml`` + ``model.safetensors``) through
``worldgen.ckpt``; ``load_context`` takes the first frames of a token-shard episode as a batch-1 context (image codes,
ego tokens binned by the model's own pose tokenizer). The rollout itself is ``worldgen.worldmodel.rollout.rollout``;
decoding to pixels, the CLI ``worldgen generate drivingworld`` and the demo go through
``worldgen.pipelines.drivingworld``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from worldgen.worldmodel.model import DrivingWorldGPT, GPTConfig


def load_model(ckpt: str | Path, device: str = "cpu") -> tuple[DrivingWorldGPT, dict]:
    """Model from a training output folder; returns (model, the saved config as a plain dict)."""
    from worldgen import ckpt as C

    loaded = C.load(ckpt, GPTConfig, DrivingWorldGPT, task="drivingworld", device=device, what="DrivingWorld GPT")
    return loaded.module, loaded.raw


def guidance_note(raw: dict, ego_guidance: float) -> Optional[str]:
    """A warning when ego guidance is asked of a GPT whose saved training config had no posedrop (its ego-less
    prediction, the guidance's baseline, was then never trained); None otherwise."""
    if ego_guidance == 1.0 or float((raw.get("data") or {}).get("posedrop_prob", 0.0) or 0.0) > 0:
        return None
    return (f"ego guidance {ego_guidance:g} on a GPT trained without posedrop (data.posedrop_prob 0): its ego-less "
            "prediction was never trained, so the guided logits extrapolate from an untrained branch")


def check_pair(gpt: DrivingWorldGPT, tok, names: tuple[str, str] = ("tokenizer", "GPT")) -> None:
    """``ValueError`` unless the tokenizer codes the GPT's token grid with the GPT's codebook size."""
    size = getattr(getattr(tok, "cfg", None), "frame_size", None) or getattr(tok, "frame_size", None)
    grid = tuple(tok.grid_for(*size)) if size is not None else (gpt.h, gpt.w)
    if grid != (gpt.h, gpt.w) or tok.codebook_size != gpt.cfg.codebook_size:
        raise ValueError(f"{names[0]} (grid {grid}, {tok.codebook_size} codes) does not fit {names[1]} "
                         f"(grid {(gpt.h, gpt.w)}, {gpt.cfg.codebook_size} codes)")


def load_context(model: DrivingWorldGPT, source: Optional[str], tokens_root: Optional[str], n: int) -> dict:
    """The first ``n`` frames of a token episode as a batch-1 context (poses binned by the model's tokenizer):
    ``img`` (1 t h*w), ``ego`` (1 t 3), ``keep`` (1 t), the episode's ``poses`` and its path as ``episode``."""
    from worldgen.data.tokens import episode_ids, load_episode

    if source and source.endswith(".safetensors"):
        path = Path(source)
    else:
        if not tokens_root:
            raise ValueError("no token folder for the context: pass --tokens DIR or --context-from FILE.safetensors")
        eid = source or episode_ids(tokens_root)[-1]  # default: the last (held-out) episode
        path = Path(tokens_root) / "episodes" / f"{eid}.safetensors"
    ep = load_episode(path)
    if tuple(ep["codes"].shape[1:]) != (model.h, model.w):
        raise ValueError(f"{path}: code grid {tuple(ep['codes'].shape[1:])} != model grid {(model.h, model.w)}")
    n = min(n, ep["codes"].shape[0])
    ego = model.pose_tokenizer.encode(ep["poses"][:n], ep["pose_mask"][:n])
    return {"img": ep["codes"][:n].flatten(1)[None], "ego": ego[None], "keep": ep["pose_mask"][:n][None],
            "poses": ep["poses"][:n], "episode": str(path)}


__all__ = ["load_model", "load_context", "check_pair"]
