"""``worldgen data offline-rl``: collect a D4RL-style dataset from a Gymnasium MuJoCo (or the cheap) environment.

Collecting needs a behaviour agent, so it lives with the agents (``rl/``); the file format it writes (reading,
writing, validating D4RL-layout HDF5) stays in ``worldgen.data.offline_rl``.

The D4RL recipe (Fu et al., 2020, Sec. 5; REFERENCES.md): train a SAC behaviour policy online and checkpoint it;

- ``random``: a uniformly random policy;
- ``expert``: the final (converged) SAC policy;
- ``medium``: the SAC checkpoint whose evaluation return is closest to a third of the expert's;
- ``medium-replay``: SAC's replay buffer up to the medium checkpoint;
- ``medium-expert``: medium and expert data concatenated.

Data are collected with the stochastic policy (actions sampled), terminals and timeouts kept apart. The behaviour
agent is worldgen's SAC-N (``worldgen.rl.agents.sac_n``) with N = 2 critics and no EDAC term, i.e. plain SAC with
clipped double-Q. Every file records self-calibrated reference returns (``ref_min_score`` = mean random-policy
return, ``ref_max_score`` = the expert checkpoint's evaluation return) and, for D4RL tasks, D4RL's as well.

Deliberate deviation, for a small machine: D4RL trains SAC for 1M steps and stores 1M (2M for medium-expert)
transitions; ``--train-steps`` and ``--steps`` scale both down, and a run below a converged expert is labelled as such
by its metadata (``behaviour_train_steps``). ``--behaviour-dir`` saves the SAC run (checkpoints + replay buffer) so
every kind of one environment comes from the same behaviour run, as in D4RL.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from worldgen.data.offline_rl import (D4RL_REF_RETURNS, OfflineDataset, env_family, from_episodes, load_dataset,
                                      make_dataset, save_dataset)
from worldgen.io import load_weights, read_json, save_weights, write_json
from worldgen.rl.agents.sac_n import SACN, SACNConfig
from worldgen.rl.envs import env_dims, make_env
from worldgen.rl.evaluation import actor_fn, evaluate, rollout_dataset

log = logging.getLogger(__name__)
KINDS = ("random", "medium", "medium-replay", "expert", "medium-expert")


@dataclass
class BehaviourConfig:
    train_steps: int = 1_000_000  # online SAC environment steps (D4RL: 1M)
    start_steps: int = 10_000  # uniform-random warm-up steps before the policy acts
    batch_size: int = 256  # SAC minibatch
    hidden: list = field(default_factory=lambda: [256, 256])  # SAC actor/critic widths
    eval_every: int = 10_000  # environment steps between evaluations / checkpoints
    eval_episodes: int = 5  # episodes per evaluation


@dataclass
class BehaviourRun:
    """Checkpoints ``(step, eval return, actor state)`` and the replay buffer of one SAC run."""

    env_id: str
    checkpoints: list
    replay: OfflineDataset
    random_return: float
    train_steps: int
    hidden: list = field(default_factory=lambda: [256, 256])


def _sac(env_id: str, cfg: BehaviourConfig, seed: int) -> SACN:
    env = make_env(env_id)
    obs_dim, act_dim = env_dims(env)
    torch.manual_seed(seed)
    return SACN(SACNConfig(num_critics=2, eta=0.0, hidden=list(cfg.hidden)), obs_dim, act_dim)


def train_behaviour(env_id: str, cfg: BehaviourConfig, seed: int = 0, progress: bool = True) -> BehaviourRun:
    """Online SAC (N = 2) with periodic evaluation; every evaluation is a checkpoint."""
    agent = _sac(env_id, cfg, seed)
    env = make_env(env_id, seed=seed)
    rng = np.random.default_rng(seed)
    rb = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    ckpts = []
    obs, _ = env.reset(seed=seed)
    episode = 0
    for t in tqdm(range(cfg.train_steps), desc=f"SAC {env_id}", disable=not progress, mininterval=5):
        a = env.action_space.sample() if t < cfg.start_steps else agent.act(obs)
        nxt, r, term, trunc, _ = env.step(a)
        for k, v in zip(rb, (obs, a, r, nxt, term, (trunc or t == cfg.train_steps - 1) and not term)):
            rb[k].append(v)
        obs = nxt
        if term or trunc:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
        if t >= min(cfg.start_steps, cfg.batch_size) and len(rb["rewards"]) >= cfg.batch_size:
            idx = rng.integers(0, len(rb["rewards"]), cfg.batch_size)
            agent.update({k: np.asarray([rb[k][i] for i in idx], np.float32) for k in agent_keys()})
        if (t + 1) % cfg.eval_every == 0 or t == cfg.train_steps - 1:
            ev = evaluate(actor_fn(agent.actor), env_id, cfg.eval_episodes, seed=10_000 + t)
            ckpts.append((t + 1, ev["return_mean"], {k: v.clone() for k, v in agent.actor.state_dict().items()}))
            log.info("SAC %s step %d eval return %.1f", env_id, t + 1, ev["return_mean"])
    rand = evaluate(lambda o: env.action_space.sample(), env_id, cfg.eval_episodes, seed=20_000)["return_mean"]
    replay = make_dataset(**{k: np.asarray(v) for k, v in rb.items()}, metadata={"env_id": env_id})
    return BehaviourRun(env_id, ckpts, replay, rand, cfg.train_steps, list(cfg.hidden))


def agent_keys() -> tuple:
    return ("observations", "actions", "rewards", "next_observations", "terminals")


def pick_checkpoints(run: BehaviourRun) -> tuple[int, int]:
    """(medium index, expert index): expert = last checkpoint; medium = return closest to a third of the expert's
    (measured above the random return, so it also works for tasks with negative returns)."""
    expert = len(run.checkpoints) - 1
    lo, hi = run.random_return, run.checkpoints[expert][1]
    target = lo + (hi - lo) / 3.0
    medium = int(np.argmin([abs(c[1] - target) for c in run.checkpoints[:expert]] or [0])) if expert > 0 else 0
    return medium, expert


def _actor(run: BehaviourRun, state: dict):
    agent = _sac(run.env_id, BehaviourConfig(hidden=list(run.hidden)), 0)
    agent.actor.load_state_dict(state)
    return agent.actor.eval()


# ------------------------------------------------------------------------------------------- behaviour cache I/O
def save_behaviour(run: BehaviourRun, out_dir: Path) -> None:
    for step, ret, state in run.checkpoints:
        save_weights(out_dir / f"actor_{step:09d}.safetensors", state, {"eval_return": ret})
    save_dataset(out_dir / "replay.hdf5", run.replay)
    write_json(out_dir / "run.json", {"env_id": run.env_id, "random_return": run.random_return,
                                      "train_steps": run.train_steps, "hidden": list(run.hidden),
                                      "checkpoints": [[s, r] for s, r, _ in run.checkpoints]})


def load_behaviour(out_dir: Path) -> BehaviourRun:
    meta = read_json(out_dir / "run.json")
    ckpts = [(s, r, load_weights(out_dir / f"actor_{s:09d}.safetensors")) for s, r in meta["checkpoints"]]
    return BehaviourRun(meta["env_id"], ckpts, load_dataset(out_dir / "replay.hdf5"), meta["random_return"],
                        meta["train_steps"], list(meta.get("hidden", [256, 256])))


def get_behaviour(env_id: str, cfg: BehaviourConfig, seed: int, cache: Optional[Path]) -> BehaviourRun:
    if cache is not None and (cache / "run.json").is_file():
        run = load_behaviour(cache)
        if run.env_id != env_id:
            raise ValueError(f"{cache}: behaviour run is for {run.env_id}, not {env_id}")
        return run
    run = train_behaviour(env_id, cfg, seed)
    if cache is not None:
        save_behaviour(run, cache)
    return run


# ------------------------------------------------------------------------------------------------------ datasets
def _metadata(env_id: str, kind: str, seed: int, extra: dict) -> dict:
    meta = {"env_id": env_id, "kind": kind, "seed": seed, "generator": "worldgen data offline-rl", **extra}
    fam = env_family(env_id)
    if fam in D4RL_REF_RETURNS:
        meta["d4rl_ref_min_score"], meta["d4rl_ref_max_score"] = D4RL_REF_RETURNS[fam]
    return meta


def _concat(a: OfflineDataset, b: OfflineDataset, meta: dict) -> OfflineDataset:
    return from_episodes([a.arrays(), b.arrays()], meta)


def make_offline_dataset(env_id: str, kind: str, steps: int, seed: int = 0,
                         behaviour: Optional[BehaviourConfig] = None, cache: Optional[Path] = None) -> OfflineDataset:
    """Collect one dataset of ``kind`` (see module docstring) with ``steps`` transitions per policy."""
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind '{kind}'; valid: {', '.join(KINDS)}")
    bcfg = behaviour or BehaviourConfig()
    run = get_behaviour(env_id, bcfg, seed, cache)
    mi, ei = pick_checkpoints(run)
    extra = {"ref_min_score": run.random_return, "ref_max_score": run.checkpoints[ei][1],
             "behaviour": "SAC-N (N=2, eta=0)", "behaviour_train_steps": run.train_steps,
             "medium_checkpoint_step": run.checkpoints[mi][0], "medium_checkpoint_return": run.checkpoints[mi][1],
             "expert_checkpoint_step": run.checkpoints[ei][0],
             "checkpoint_returns": [[s, r] for s, r, _ in run.checkpoints]}
    meta = _metadata(env_id, kind, seed, extra)
    collect = lambda i, s: rollout_dataset(actor_fn(_actor(run, run.checkpoints[i][2]), False), env_id,
                                           steps, seed=s, metadata=meta)
    if kind == "random":
        return rollout_dataset(None, env_id, steps, seed=seed, metadata=meta)
    if kind == "medium":
        return collect(mi, seed)
    if kind == "expert":
        return collect(ei, seed)
    if kind == "medium-replay":
        n = min(run.checkpoints[mi][0], len(run.replay))
        sub = run.replay.subset(n)
        sub.timeouts[-1] = not sub.terminals[-1]
        return make_dataset(**sub.arrays(), metadata=meta)
    return _concat(collect(mi, seed), collect(ei, seed + 1), meta)


def main(env_id: str, kind: str, out: str | Path, steps: int = 1_000_000, seed: int = 0,
         behaviour: Optional[BehaviourConfig] = None, behaviour_dir: Optional[str | Path] = None,
         policy_out: Optional[str | Path] = None) -> dict:
    """Collect and write ``out`` (D4RL-layout HDF5); returns a summary dict."""
    t0 = time.time()
    cache = Path(behaviour_dir) if behaviour_dir else None
    ds = make_offline_dataset(env_id, kind, steps, seed, behaviour, cache)
    save_dataset(out, ds)
    if policy_out:
        from worldgen.rl.policy import save_policy

        run = get_behaviour(env_id, behaviour or BehaviourConfig(), seed, cache)
        save_policy(policy_out, _actor(run, run.checkpoints[pick_checkpoints(run)[1]][2]))
    rets = ds.episode_returns()
    return {"out": str(out), "env_id": env_id, "kind": kind, "transitions": len(ds), "episodes": len(rets),
            "return_mean": float(rets.mean()), "ref_min_score": ds.metadata["ref_min_score"],
            "ref_max_score": ds.metadata["ref_max_score"], "wall_time_s": round(time.time() - t0, 1)}


__all__ = ["KINDS", "BehaviourConfig", "BehaviourRun", "train_behaviour", "pick_checkpoints",
           "make_offline_dataset", "main"]
