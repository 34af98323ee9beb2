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

Resume: with ``--behaviour-dir``, the SAC run also leaves a resume state (agent, optimisers, replay buffer, every
random-number state) at the first episode end after each checkpoint, written as a whole folder then pointed to by
``resume.json`` (both atomic). A killed run, or one stopped on purpose by ``--stop-after STEPS`` (time slices for
background jobs across sessions), continues from there when the same command runs again, and ends exactly where an
uninterrupted run would: the state is only taken between episodes, so no simulator state needs restoring.
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
    stop_after: int = 0  # pause (resume state saved) at the first episode end after this many steps; 0 = run to the end


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


def train_behaviour(env_id: str, cfg: BehaviourConfig, seed: int = 0, progress: bool = True,
                    state_dir: Optional[Path] = None) -> Optional[BehaviourRun]:
    """Online SAC (N = 2) with periodic evaluation; every evaluation is a checkpoint. With ``state_dir``, resume
    from its resume state if there is one and leave one after each checkpoint; returns None when paused by
    ``cfg.stop_after``."""
    agent = _sac(env_id, cfg, seed)
    env = make_env(env_id, seed=seed)
    rng = np.random.default_rng(seed)
    rb = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    ckpts = []
    obs, _ = env.reset(seed=seed)
    episode, first, pending = 0, 0, False
    if state_dir is not None and (state_dir / RESUME_FILE).is_file():
        first, episode, ckpts = _load_resume(state_dir, agent, rb, rng, env)
        obs, _ = env.reset(seed=seed + episode)
        log.info("SAC %s: resumed at step %d (episode %d)", env_id, first, episode)
    for t in tqdm(range(first, cfg.train_steps), desc=f"SAC {env_id}", disable=not progress, mininterval=5,
                  initial=first, total=cfg.train_steps):
        a = env.action_space.sample() if t < cfg.start_steps else agent.act(obs)
        nxt, r, term, trunc, _ = env.step(a)
        for k, v in zip(rb, (obs, a, r, nxt, term, (trunc or t == cfg.train_steps - 1) and not term)):
            rb[k].append(v)
        obs = nxt
        if t >= min(cfg.start_steps, cfg.batch_size) and len(rb["rewards"]) >= cfg.batch_size:
            idx = rng.integers(0, len(rb["rewards"]), cfg.batch_size)
            agent.update({k: np.asarray([rb[k][i] for i in idx], np.float32) for k in agent_keys()})
        if (t + 1) % cfg.eval_every == 0 or t == cfg.train_steps - 1:
            ev = evaluate(actor_fn(agent.actor), env_id, cfg.eval_episodes, seed=10_000 + t)
            ckpts.append((t + 1, ev["return_mean"], {k: v.clone() for k, v in agent.actor.state_dict().items()}))
            log.info("SAC %s step %d eval return %.1f", env_id, t + 1, ev["return_mean"])
            pending = state_dir is not None
        if term or trunc:
            episode += 1
            if pending and t < cfg.train_steps - 1:  # between episodes: nothing of the simulator to restore
                _save_resume(state_dir, t + 1, episode, agent, rb, ckpts, rng, env)
                pending = False
                if cfg.stop_after and t + 1 >= cfg.stop_after:
                    log.info("SAC %s: paused at step %d (resume state in %s)", env_id, t + 1, state_dir)
                    return None
            obs, _ = env.reset(seed=seed + episode)
    rand = evaluate(lambda o: env.action_space.sample(), env_id, cfg.eval_episodes, seed=20_000)["return_mean"]
    replay = make_dataset(**{k: np.asarray(v) for k, v in rb.items()}, metadata={"env_id": env_id})
    return BehaviourRun(env_id, ckpts, replay, rand, cfg.train_steps, list(cfg.hidden))


RESUME_FILE = "resume.json"


def _optim_tensors(agent: SACN) -> dict:
    """Adam states of the three optimisers as a flat name -> tensor dict (safetensors holds no nested dicts)."""
    out = {}
    for name, st in agent.optimizer_state().items():
        for idx, slots in st["state"].items():
            out.update({f"{name}/{idx}/{k}": torch.as_tensor(v) for k, v in slots.items()})
    return out


def _load_optim(agent: SACN, flat: dict) -> None:
    opts = {"actor": agent.actor_opt, "critic": agent.critic_opt, "alpha": agent.alpha_opt}
    for name, opt in opts.items():
        state: dict = {}
        for key, v in flat.items():
            n, idx, slot = key.split("/")
            if n == name:
                state.setdefault(int(idx), {})[slot] = v
        opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})


def _save_resume(state_dir: Path, t_next: int, episode: int, agent: SACN, rb: dict, ckpts: list, rng, env) -> None:
    """A whole resume folder (written aside, renamed), then ``resume.json`` pointing at it; older folders removed."""
    import shutil

    from worldgen.io import atomic_dir

    name = f"resume-{t_next:09d}"
    if not (state_dir / name).is_dir():
        with atomic_dir(state_dir / name) as tmp:
            save_weights(tmp / "agent.safetensors", agent.state_dict())
            save_weights(tmp / "optim.safetensors", _optim_tensors(agent))
            save_weights(tmp / "replay.safetensors", {k: torch.as_tensor(np.asarray(v, np.float32))
                                                      for k, v in rb.items()})
            save_weights(tmp / "actors.safetensors", {f"{s}/{k}": v for s, _, st in ckpts for k, v in st.items()})
            save_weights(tmp / "torch_rng.safetensors", {"cpu": torch.get_rng_state()})
            write_json(tmp / "state.json", {
                "t_next": t_next, "episode": episode, "checkpoints": [[s, r] for s, r, _ in ckpts],
                "rng": rng.bit_generator.state, "action_space_rng": env.action_space.np_random.bit_generator.state})
    write_json(state_dir / RESUME_FILE, {"dir": name, "t_next": t_next})
    for old in state_dir.glob("resume-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def _load_resume(state_dir: Path, agent: SACN, rb: dict, rng, env) -> tuple[int, int, list]:
    d = state_dir / read_json(state_dir / RESUME_FILE)["dir"]
    st = read_json(d / "state.json")
    agent.load_state_dict(load_weights(d / "agent.safetensors"))
    _load_optim(agent, load_weights(d / "optim.safetensors"))
    for k, v in load_weights(d / "replay.safetensors").items():
        rb[k].extend(v.numpy().astype(bool) if k in ("terminals", "timeouts") else v.numpy())
    actors = load_weights(d / "actors.safetensors")
    ckpts = [(s, r, {k.split("/", 1)[1]: v for k, v in actors.items() if k.split("/", 1)[0] == str(s)})
             for s, r in st["checkpoints"]]
    torch.set_rng_state(load_weights(d / "torch_rng.safetensors")["cpu"])
    rng.bit_generator.state = st["rng"]
    env.action_space.np_random.bit_generator.state = st["action_space_rng"]
    return int(st["t_next"]), int(st["episode"]), ckpts


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
        if run.train_steps != cfg.train_steps:  # never hand out a shorter (or longer) run than asked for, silently
            raise ValueError(f"{cache}: the finished behaviour run has {run.train_steps} SAC steps, not the "
                             f"--train-steps {cfg.train_steps} asked for; pass --train-steps {run.train_steps} to "
                             f"reuse it, or another --behaviour-dir for a new run (a finished run is not extended)")
        return run
    run = train_behaviour(env_id, cfg, seed, state_dir=cache)
    if run is None:
        raise BehaviourPaused(f"behaviour SAC for {env_id} paused at --stop-after {cfg.stop_after}; run the same "
                              f"command again to continue from {cache}")
    if cache is not None:
        save_behaviour(run, cache)
        _drop_resume(cache)  # run.json now holds the finished run
    return run


def _drop_resume(state_dir: Path) -> None:
    import shutil

    (state_dir / RESUME_FILE).unlink(missing_ok=True)
    for old in state_dir.glob("resume-*"):
        shutil.rmtree(old, ignore_errors=True)


class BehaviourPaused(RuntimeError):
    """The behaviour run stopped at ``stop_after`` with a resume state; no dataset was written."""


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
    if behaviour is not None and behaviour.stop_after and cache is None:
        raise ValueError("--stop-after needs --behaviour-dir (where the resume state is kept)")
    try:
        ds = make_offline_dataset(env_id, kind, steps, seed, behaviour, cache)
    except BehaviourPaused as e:
        return {"out": None, "env_id": env_id, "kind": kind, "paused": True, "message": str(e),
                "wall_time_s": round(time.time() - t0, 1)}
    save_dataset(out, ds)
    if policy_out:
        from worldgen.rl.policy import save_policy

        run = get_behaviour(env_id, behaviour or BehaviourConfig(), seed, cache)
        save_policy(policy_out, _actor(run, run.checkpoints[pick_checkpoints(run)[1]][2]))
    rets = ds.episode_returns()
    return {"out": str(out), "env_id": env_id, "kind": kind, "transitions": len(ds), "episodes": len(rets),
            "return_mean": float(rets.mean()), "ref_min_score": ds.metadata["ref_min_score"],
            "ref_max_score": ds.metadata["ref_max_score"], "wall_time_s": round(time.time() - t0, 1)}


__all__ = ["KINDS", "BehaviourConfig", "BehaviourRun", "BehaviourPaused", "train_behaviour", "pick_checkpoints",
           "make_offline_dataset", "main"]
