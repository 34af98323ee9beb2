"""RAVL: reach-aware value learning (Sims et al. 2024, "The Edge-of-Reach Problem in Offline Model-Based RL").

Algorithm (paper algorithm 1, MBPO-style, no reward penalty):

1. Every ``rollout.every`` agent steps, start ``rollout.batch`` rollouts of ``rollout.length`` (k) steps from dataset
   states with the current (stochastic) policy inside the dynamics model; add every transition to a FIFO model
   buffer holding ``rollout.retain_epochs`` epochs of rollouts.
2. Each agent step trains SAC-N/EDAC (``worldgen.rl.agents.sac_n``: N critics, min over critics in the target,
   EDAC diversity term ``eta``, auto-alpha) on a batch of ``real_ratio`` real and ``1 - real_ratio`` model data.

RAVL = ``N 10, eta 1``; **Base** = ``N 2, eta 0`` (plain SAC in the model). **MOPO** and **MOBILE** = Base with an
uncertainty-penalised reward on model transitions (``penalty.kind``, ``worldgen.rl.penalties``): the baselines whose
penalty vanishes with the model error, so under the true dynamics they are Base again. ``true_dynamics: true``
replaces the learned ensemble by the simulator itself (set state, step), which removes every model error: the
edge-of-reach problem remains, because states reached only at the last rollout step (the *edge of reach*) appear as
next states but never as states the critics are trained on, so their values are bootstrapped "from the void".
``oracle_patch`` replaces those values by the true ``V*`` (point mass only, where ``V*`` is known), the paper's
Base-OraclePatch.

Logged per epoch (``metrics.csv``): evaluation return and normalised score, Q mean and ensemble std at states the
critics are trained on (model-buffer states), Q at rollout-final (edge-of-reach) states separately, the true value
at those states where it is known, the mean reward penalty on model rows (``penalty``, 0 for RAVL / Base) and the
mean losses.

Deliberate deviations: the model buffer marks a transition as edge-of-reach when it is the last of its rollout and
not terminal (a per-rollout proxy for the paper's set-based definition); the oracle's ``V*`` is the hard
(entropy-free) optimal value. Runs on CPU or any device (the public code asserts CUDA); the checkpoint is written
and read through one filename constant (the public code saved and loaded different names).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from worldgen.config import save as save_config
from worldgen.io import load_weights, save_weights, write_csv, write_json
from worldgen.rl.agents.sac_n import SACN, SACNConfig
from worldgen.rl.buffers import ReplayBuffer, mixed_batch
from worldgen.rl.dynamics import DynamicsConfig, EnsembleDynamics, LearnedDynamics, train_dynamics
from worldgen.rl.penalties import PenaltyConfig, batch_penalty, check_penalty, mopo_penalty
from worldgen.rl.termination import get_termination_fn
from worldgen.rl import pointmass as pm

AGENT_FILE = "agent.safetensors"
DYNAMICS_FILE = "dynamics.safetensors"
CONFIG_FILE = "config.yaml"


@dataclass
class RolloutConfig:
    length: int = 5  # k, model steps per rollout (RAVL default 5)
    batch: int = 50000  # rollouts started per rollout round (MBPO / OfflineRL-Kit default)
    every: int = 1000  # agent steps between rollout rounds
    retain_epochs: int = 5  # the FIFO model buffer holds this many rounds of rollouts
    real_ratio: float = 0.05  # fraction of each agent batch drawn from the real dataset (RAVL 0.05)


@dataclass
class RAVLConfig:
    task: str = "ravl"  # `worldgen train` task (worldgen.registry); this loop is not a Lightning one
    name: str = "ravl"  # run name
    seed: int = 0  # seeds numpy and torch
    out_dir: str = "runs/ravl"  # metrics.csv, checkpoint and config land here
    env: str = "pointmass"  # pointmass | Hopper-v5 | Walker2d-v5 | HalfCheetah-v5
    dataset: str = ""  # D4RL-layout HDF5 (MuJoCo); empty for pointmass = random-policy data
    pointmass: pm.PointMassConfig = field(default_factory=pm.PointMassConfig)
    pointmass_episodes: int = 100  # random-policy episodes in the point-mass dataset
    true_dynamics: bool = False  # roll out in the simulator itself instead of the learned ensemble
    dynamics_path: str = ""  # a trained ensemble (dynamics.safetensors); empty = train one first
    oracle_patch: bool = False  # true V* at edge-of-reach next states (point mass only)
    agent: SACNConfig = field(default_factory=SACNConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    penalty: PenaltyConfig = field(default_factory=PenaltyConfig)  # MOPO / MOBILE reward penalty; none = RAVL/Base
    epochs: int = 3000  # epochs of steps_per_epoch agent steps (RAVL: 3000 x 1000)
    steps_per_epoch: int = 1000  # agent gradient steps per epoch
    batch_size: int = 256  # agent batch size
    eval_episodes: int = 10  # evaluation episodes per epoch (deterministic policy)
    eval_every: int = 1  # epochs between evaluations
    q_eval_states: int = 1024  # states sampled to log Q statistics
    stop_if_q_above: float = 1e12  # stop the run (logging "diverged") once |Q| exceeds this
    device: str = "cpu"  # cpu | cuda | mps



# ---------------------------------------------------------------------------------------------------- environments
class ExactModel:
    """An exact rollout model has one member and no uncertainty: the MOPO / MOBILE penalties are 0 on it."""

    def uncertainty(self, obs: np.ndarray, act: np.ndarray, kind: str = "aleatoric") -> np.ndarray:
        return np.zeros(len(obs), np.float32)

    def members(self, obs: torch.Tensor, act: torch.Tensor):
        nxt, rew, term = self.step(obs.cpu().numpy(), act.cpu().numpy())
        t = lambda x: torch.as_tensor(np.asarray(x, np.float32), device=obs.device).unsqueeze(0)  # noqa: E731
        return t(nxt), t(rew), t(term)


class PointMassTrueDynamics(ExactModel):
    """The point mass's own dynamics as a rollout model (exact, vectorised)."""

    def __init__(self, cfg: pm.PointMassConfig):
        self.cfg = cfg

    def step(self, obs: np.ndarray, act: np.ndarray):
        return pm.step_batch(self.cfg, obs, act)


class MujocoTrueDynamics(ExactModel):
    """The MuJoCo simulator as a rollout model: ``set_state(qpos, qvel)`` then ``step`` per row.

    Observations exclude the x position, which none of the locomotion dynamics depend on, so ``qpos = (0, obs[:nq-1])``
    and ``qvel = obs[nq-1:]``. Gymnasium v5 clips observed velocities to +-10, so a state whose true velocity was
    clipped is restored approximately (rare in practice).
    """

    def __init__(self, env_id: str, seed: int = 0):
        import gymnasium as gym

        self.env = gym.make(env_id).unwrapped
        self.env.reset(seed=seed)
        self.nq = self.env.model.nq

    def step(self, obs: np.ndarray, act: np.ndarray):
        nxt, rew, term = np.zeros_like(obs), np.zeros(len(obs), np.float32), np.zeros(len(obs), bool)
        for i, (o, a) in enumerate(zip(obs.astype(np.float64), act)):
            self.env.set_state(np.concatenate([[0.0], o[: self.nq - 1]]), o[self.nq - 1:])
            nxt[i], rew[i], term[i], _, _ = self.env.step(a)
        return nxt.astype(np.float32), rew, term


class PointMassTask:
    has_oracle = True

    def __init__(self, cfg: RAVLConfig):
        self.pm, self.gamma, self.obs_dim, self.act_dim = cfg.pointmass, cfg.agent.gamma, 2, 2
        self.data = pm.collect_dataset(self.pm, cfg.pointmass_episodes, cfg.seed)
        self.termination = get_termination_fn("pointmass", self.pm)
        rng = np.random.default_rng(cfg.seed)
        random_ret = pm.policy_returns(self.pm, lambda s: rng.uniform(-1, 1, s.shape), 1000, 10_000 + cfg.seed)
        best_ret = pm.policy_returns(self.pm, lambda s: pm.greedy_action(self.pm, s), 1000, 10_000 + cfg.seed)
        self.ref = (float(random_ret.mean()), float(best_ret.mean()))

    def true_dynamics(self, seed: int):
        return PointMassTrueDynamics(self.pm)

    def evaluate(self, agent: SACN, n: int, seed: int) -> float:
        return float(pm.policy_returns(self.pm, lambda s: agent.act(s, deterministic=True), n, seed).mean())

    def oracle_value(self, states: np.ndarray) -> np.ndarray:
        return pm.optimal_value(self.pm, states, self.gamma).astype(np.float32)


class MujocoTask:
    has_oracle = False

    def __init__(self, cfg: RAVLConfig):
        from worldgen.data.offline_rl import load_dataset, reference_returns

        if not cfg.dataset:
            raise ValueError(f"env '{cfg.env}' needs 'dataset': a D4RL-layout HDF5 file (worldgen data offline-rl)")
        ds = load_dataset(cfg.dataset)
        self.env_id, self.obs_dim, self.act_dim = cfg.env, ds.obs_dim, ds.act_dim
        self.data = {k: np.asarray(v, dtype=np.float32) for k, v in ds.arrays().items()}
        self.termination = get_termination_fn(cfg.env)
        self.ref = reference_returns(cfg.env, ds.metadata)

    def true_dynamics(self, seed: int):
        return MujocoTrueDynamics(self.env_id, seed)

    def evaluate(self, agent: SACN, n: int, seed: int) -> float:
        import gymnasium as gym

        env, returns = gym.make(self.env_id), []
        for ep in range(n):
            obs, _ = env.reset(seed=seed + ep)
            done, ret = False, 0.0
            while not done:
                obs, r, term, trunc, _ = env.step(agent.act(obs, deterministic=True))
                ret, done = ret + float(r), term or trunc
            returns.append(ret)
        return float(np.mean(returns))

    def oracle_value(self, states: np.ndarray) -> np.ndarray:
        raise ValueError("oracle_patch needs the true value function, known only for env 'pointmass'")


def make_task(cfg: RAVLConfig):
    return PointMassTask(cfg) if cfg.env.lower() == "pointmass" else MujocoTask(cfg)


def make_model(cfg: RAVLConfig, task, device: torch.device, progress: bool):
    """The rollout model: the simulator (``true_dynamics: true``) or a learned ensemble (loaded or trained)."""
    if cfg.true_dynamics:
        return task.true_dynamics(cfg.seed), None
    ens = EnsembleDynamics(cfg.dynamics, task.obs_dim, task.act_dim).to(device)
    if cfg.dynamics_path:
        ens.load_state_dict(load_weights(cfg.dynamics_path, device=str(device)))
    else:
        train_dynamics(ens, task.data, seed=cfg.seed, progress=progress)
    return LearnedDynamics(ens, task.termination, seed=cfg.seed), ens


# -------------------------------------------------------------------------------------------------------- rollouts
def rollout(model, agent: SACN, starts: np.ndarray, length: int, oracle: Callable | None = None,
            penalty: PenaltyConfig | None = None) -> dict:
    """k-step rollouts with the stochastic policy; rows carry ``edge`` (last, non-terminal step), ``from_model``
    (1), MOPO's ``penalty`` (``lambda u(s, a)``, 0 for other methods) and the oracle fields."""
    pcfg = penalty or PenaltyConfig()
    rows: list[dict] = []
    obs = starts.astype(np.float32)
    for t in range(length):
        act = agent.act(obs).astype(np.float32)
        nxt, rew, term = model.step(obs, act)
        edge = np.full(len(obs), t == length - 1) & ~term
        rows.append({"observations": obs, "actions": act, "rewards": rew, "next_observations": nxt,
                     "terminals": term.astype(np.float32), "edge": edge.astype(np.float32),
                     "from_model": np.ones(len(obs), np.float32), "penalty": mopo_penalty(model, obs, act, pcfg)})
        obs = nxt[~term]
        if len(obs) == 0:
            break
    out = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    if oracle is not None:
        out["oracle_mask"] = out["edge"].copy()
        value = np.zeros(len(out["edge"]), np.float32)
        hit = out["edge"] > 0.5
        if hit.any():
            value[hit] = oracle(out["next_observations"][hit])
        out["oracle_value"] = value
    return out


def _q_summary(agent: SACN, states: np.ndarray, prefix: str) -> dict:
    if len(states) == 0:
        return {f"{prefix}_mean": math.nan, f"{prefix}_std": math.nan}
    q = agent.q_values(states).cpu().numpy()  # k b
    return {f"{prefix}_mean": float(q.mean()), f"{prefix}_std": float(q.std(axis=0).mean()) if len(q) > 1 else 0.0}


def q_statistics(agent: SACN, task, real: ReplayBuffer, model_buf: ReplayBuffer, n: int, rng) -> dict:
    """Q at the policy's action for trained-on states (model buffer), edge-of-reach states, and dataset states."""
    logs: dict = {}
    rows = model_buf.valid()
    trained = rows["observations"][rng.integers(0, len(model_buf), n)] if len(model_buf) else np.zeros((0, 1))
    edge_all = rows["next_observations"][rows["edge"] > 0.5]
    edge = edge_all[rng.integers(0, len(edge_all), n)] if len(edge_all) else edge_all
    data = real.data["observations"][rng.integers(0, len(real), n)]
    logs.update(_q_summary(agent, trained, "q"))
    logs.update(_q_summary(agent, edge, "q_edge"))
    logs.update(_q_summary(agent, data, "q_data"))
    if task.has_oracle:
        logs["v_true"] = float(task.oracle_value(trained).mean()) if len(trained) else math.nan
        logs["v_true_edge"] = float(task.oracle_value(edge).mean()) if len(edge) else math.nan
    return logs


# -------------------------------------------------------------------------------------------------------- training
def _seed_all(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)




def _model_buffer(cfg: RAVLConfig, task, oracle: bool) -> ReplayBuffer:
    extra = {"edge": (), "from_model": (), "penalty": ()}
    if oracle:
        extra.update({"oracle_mask": (), "oracle_value": ()})
    cap = cfg.rollout.batch * cfg.rollout.length * cfg.rollout.retain_epochs
    return ReplayBuffer.for_env(cap, task.obs_dim, task.act_dim, extra, seed=cfg.seed + 1)


def check_config(cfg: RAVLConfig) -> None:
    """What ``worldgen.config`` cannot know about a RAVL config (its generic checks cover NaN/inf, batch sizes,
    learning rates, ensemble sizes, epochs); every problem is a ``ValueError`` naming the field, before any work."""
    from worldgen.config import check_device
    from worldgen.io import check_output

    r = cfg.rollout
    if min(r.length, r.batch, r.every, r.retain_epochs, cfg.eval_every, cfg.eval_episodes, cfg.q_eval_states) < 1:
        raise ValueError(f"rollout.length/batch/every/retain_epochs, eval_every, eval_episodes and q_eval_states must "
                         f"be >= 1, got {r.length}/{r.batch}/{r.every}/{r.retain_epochs}, {cfg.eval_every}, "
                         f"{cfg.eval_episodes} and {cfg.q_eval_states}")
    if not 0 <= r.real_ratio <= 1:
        raise ValueError(f"rollout.real_ratio: expected a fraction in [0, 1], got {r.real_ratio}")
    if cfg.dynamics.num_elites > cfg.dynamics.ensemble_size:
        raise ValueError(f"dynamics.num_elites ({cfg.dynamics.num_elites}) cannot exceed dynamics.ensemble_size "
                         f"({cfg.dynamics.ensemble_size})")
    if cfg.oracle_patch and cfg.env.lower() != "pointmass":
        raise ValueError("oracle_patch needs the true value function, known only for env 'pointmass'")
    check_penalty(cfg.penalty)
    check_device(cfg.device, "device")
    check_output(cfg.out_dir, folder=True, what="out_dir")


def train(cfg: RAVLConfig, progress: bool = True) -> list[dict]:
    """Run RAVL / Base as configured; writes ``metrics.csv`` each epoch and the checkpoint at the end."""
    check_config(cfg)
    _seed_all(cfg.seed)
    out, device = Path(cfg.out_dir), torch.device(cfg.device)
    task = make_task(cfg)
    model, ensemble = make_model(cfg, task, device, progress)
    agent = SACN(cfg.agent, task.obs_dim, task.act_dim, device=device)
    real = ReplayBuffer.from_arrays(task.data, seed=cfg.seed)
    model_buf = _model_buffer(cfg, task, cfg.oracle_patch)
    oracle = task.oracle_value if cfg.oracle_patch else None
    rng = np.random.default_rng(cfg.seed + 2)
    history: list[dict] = []
    total = cfg.epochs * cfg.steps_per_epoch
    bar = tqdm(total=total, desc=cfg.name, disable=not progress, unit="step")
    step, start = 0, time.time()
    for epoch in range(1, cfg.epochs + 1):
        sums: dict[str, float] = {}
        for _ in range(cfg.steps_per_epoch):
            if step % cfg.rollout.every == 0:
                starts = real.data["observations"][rng.integers(0, len(real), cfg.rollout.batch)]
                model_buf.add(**rollout(model, agent, starts, cfg.rollout.length, oracle, cfg.penalty))
            batch = mixed_batch(real, model_buf, cfg.batch_size, cfg.rollout.real_ratio, device)
            logs = {"penalty": _apply_penalty(agent, model, batch, cfg.penalty), **agent.update(batch)}
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            step += 1
        bar.update(cfg.steps_per_epoch)
        row = _epoch_row(cfg, task, agent, real, model_buf, rng, epoch, step, sums, time.time() - start)
        history.append(row)
        bar.set_postfix(q=f"{row['q_mean']:.3g}", q_edge=f"{row['q_edge_mean']:.3g}", ret=row.get("return"))
        write_csv(out / "metrics.csv", history)
        if row["diverged"]:
            break
    bar.close()
    save_checkpoint(out, cfg, agent, ensemble, task, history[-1] if history else {})
    return history


def _apply_penalty(agent: SACN, model, batch: dict, pcfg: PenaltyConfig) -> float:
    """Put the method's reward penalty into ``batch["penalty"]`` (SAC-N subtracts it in its target); returns its
    mean over the batch's model rows (0 for RAVL / Base, and before the first rollout)."""
    pen = batch_penalty(agent, model, batch, pcfg) if "from_model" in batch else None
    if pen is None:
        batch.pop("penalty", None)
        return 0.0
    batch["penalty"] = pen
    rows = batch["from_model"] > 0.5
    return float(pen[rows].mean()) if rows.any() else 0.0


def _epoch_row(cfg, task, agent, real, model_buf, rng, epoch, step, sums, elapsed) -> dict:
    row: dict = {"epoch": epoch, "step": step, "time_s": round(elapsed, 2)}
    row.update({k: v / cfg.steps_per_epoch for k, v in sums.items()})
    row.update(q_statistics(agent, task, real, model_buf, cfg.q_eval_states, rng))
    if cfg.eval_episodes > 0 and epoch % cfg.eval_every == 0:
        ret = task.evaluate(agent, cfg.eval_episodes, seed=10_000 + cfg.seed)
        row["return"] = ret
        row["normalized_score"] = float(100 * (ret - task.ref[0]) / (task.ref[1] - task.ref[0]))
    watched = [row["q_mean"], row["critic_loss"]] + ([] if math.isnan(row["q_edge_mean"]) else [row["q_edge_mean"]])
    row["diverged"] = int(any(not math.isfinite(v) or abs(v) > cfg.stop_if_q_above for v in watched))
    return row


# ----------------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(out_dir, cfg: RAVLConfig, agent: SACN, ensemble: EnsembleDynamics | None, task=None,
                    metrics: dict | None = None) -> Path:
    """``agent.safetensors`` (+ ``dynamics.safetensors``), ``config.yaml`` and ``card.json`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(out / AGENT_FILE, agent.state_dict())
    if ensemble is not None:
        save_weights(out / DYNAMICS_FILE, ensemble.state_dict())
    save_config(cfg, out / CONFIG_FILE)
    write_json(out / "card.json", {"obs_dim": agent.obs_dim, "act_dim": agent.act_dim, "env": cfg.env,
                                   "true_dynamics": cfg.true_dynamics, "final_metrics": metrics or {},
                                   "reference_returns": list(task.ref) if task is not None else None})
    return out


def load_checkpoint(run_dir, device: str = "cpu") -> tuple[RAVLConfig, SACN, EnsembleDynamics | None]:
    """Inverse of ``save_checkpoint`` (same filename constants), through ``worldgen.ckpt``: the folder is checked
    (no pickles), the whole config.yaml is the ``RAVLConfig``, each module's weights load strictly."""
    from worldgen import ckpt
    from worldgen.io import read_json

    run = ckpt.check_folder(run_dir, (CONFIG_FILE, AGENT_FILE, "card.json"), "RAVL run")
    cfg, _ = ckpt.read_config(run / CONFIG_FILE, RAVLConfig, section=None)
    card = read_json(run / "card.json")
    agent = ckpt.load_state(SACN(cfg.agent, card["obs_dim"], card["act_dim"], device=device), run / AGENT_FILE, device)
    ensemble = None
    if (run / DYNAMICS_FILE).is_file():
        ensemble = EnsembleDynamics(cfg.dynamics, card["obs_dim"], card["act_dim"]).to(device)
        ckpt.load_state(ensemble, run / DYNAMICS_FILE, device)
    return cfg, agent, ensemble


__all__ = ["RAVLConfig", "RolloutConfig", "train", "rollout", "q_statistics", "save_checkpoint", "load_checkpoint",
           "make_task", "make_model", "ExactModel", "PointMassTrueDynamics", "MujocoTrueDynamics", "AGENT_FILE",
           "DYNAMICS_FILE"]
