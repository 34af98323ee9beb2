"""Task ``agent``: train an offline-RL agent (TD3+BC, IQL or the shared SAC-N/EDAC) on real, unguided-synthetic or PGD data.

Lightning runs the loop with manual optimisation (one optimiser per network, stepped in the order the agent asks).
Data modes (Jackson et al., 2024, Sec. 5.1):

- ``real``: minibatches from the real dataset only;
- ``unguided``: a synthetic set is sampled once from the trajectory diffusion model with no guidance, and each
  minibatch mixes ``synth_ratio`` synthetic with real transitions (PGD: 240 of 256);
- ``pgd``: the first synthetic set is unguided; every ``regen_every`` agent steps it is regenerated with guidance
  toward the *current* policy (coefficient ``guidance.coeff``), same mix.

The agent's policy is evaluated in the simulator every ``eval.every`` steps and at the end (normalised score with
D4RL's reference returns, or the dataset's self-calibrated ones). ``export`` writes ``policy/`` (loadable by
``worldgen.rl.policy.load_policy`` and so usable as a guidance target) and ``eval.json``.

The data loader only paces the loop (it yields step numbers); minibatches are drawn from the in-memory buffers with
a seeded generator, because the synthetic buffer is replaced during training. Known limit: ``trainer.resume`` restores
the networks and optimisers, but the step stream, the batch generator and the synthetic set restart from scratch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from worldgen.config import ExperimentConfig, TrainerConfig
from worldgen.data.offline_rl import OfflineDataset, load_dataset, normalized_score, reference_returns
from worldgen.rl.agents.iql import IQL, IQLConfig
from worldgen.rl.agents.sac_n import SACN, SACNConfig
from worldgen.rl.agents.td3bc import TD3BC, TD3BCConfig
from worldgen.rl.pgd import GuidanceConfig

log = logging.getLogger(__name__)


class SACNAgent(SACN):
    """The shared SAC-N/EDAC agent (RAVL issue) behind the same stepping interface as TD3+BC and IQL; its own
    optimisers are left unused (Lightning owns the ones built from ``param_groups``)."""

    def param_groups(self) -> dict:
        c = self.cfg
        return {"alpha": ([self.log_alpha], c.alpha_lr), "actor": (list(self.actor.parameters()), c.actor_lr),
                "critic": (list(self.critic.parameters()), c.critic_lr)}

    def train_step(self, batch: dict, step: int, stepper, generator=None) -> dict:
        logs: dict = {}
        if self.cfg.auto_alpha:
            loss, l = self.alpha_loss(batch["observations"])
            stepper("alpha", loss)
            logs.update(l)
        for name, loss_fn, arg in (("actor", self.actor_loss, batch["observations"]), ("critic", self.critic_loss, batch)):
            loss, l = loss_fn(arg)
            stepper(name, loss)
            logs.update(l)
        self.soft_update()
        return logs

    @property
    def policy(self):
        return self.actor


AGENTS = {"td3bc": (TD3BC, "td3bc"), "iql": (IQL, "iql"), "sacn": (SACNAgent, "sacn")}
MODES = ("real", "unguided", "pgd")


@dataclass
class AgentDataConfig:
    path: str = ""  # real D4RL-layout dataset
    mode: str = "real"  # real | unguided | pgd
    diffusion_ckpt: str = ""  # out_dir of `worldgen pgd train` (modes unguided, pgd)
    batch_size: int = 256  # transitions per step
    synth_ratio: float = 0.9375  # synthetic share of a batch (PGD: 240 / 256)
    n_traj: int = 1024  # windows per synthetic set
    regen_every: int = 10_000  # agent steps between PGD regenerations (PGD: 10k)
    sample_steps: int = 0  # override the diffusion sampler's Heun steps (0 = the model's)


@dataclass
class AgentEvalConfig:
    env_id: str = ""  # "" = the dataset's env_id
    every: int = 0  # agent steps between evaluations (0 = only at the end)
    episodes: int = 10  # episodes per evaluation


@dataclass
class Config(ExperimentConfig):
    task: str = "agent"
    # manual optimisation: Lightning cannot clip gradients for us, so the default clip is off
    # the run is `steps` batches in one epoch (trainer.max_steps counts optimiser steps, several per agent step)
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(gradient_clip_val=None, max_epochs=1))
    steps: int = 1_000_000  # agent gradient steps (PGD: 1M)
    agent: str = "td3bc"  # td3bc | iql | sacn
    td3bc: TD3BCConfig = field(default_factory=TD3BCConfig)
    iql: IQLConfig = field(default_factory=IQLConfig)
    sacn: SACNConfig = field(default_factory=SACNConfig)
    data: AgentDataConfig = field(default_factory=AgentDataConfig)
    guidance: GuidanceConfig = field(default_factory=lambda: GuidanceConfig(coeff=1.0))
    eval: AgentEvalConfig = field(default_factory=AgentEvalConfig)


def _tensors(ds: OfflineDataset) -> dict[str, torch.Tensor]:
    a = ds.arrays()
    out = {k: torch.as_tensor(a[k], dtype=torch.float32) for k in
           ("observations", "actions", "rewards", "next_observations", "terminals")}
    out["actions"] = out["actions"].clamp(-1, 1)
    return out


class AgentModule(L.LightningModule):
    def __init__(self, cfg: Config, real: OfflineDataset):
        super().__init__()
        if cfg.agent not in AGENTS:
            raise ValueError(f"agent '{cfg.agent}' is not one of {list(AGENTS)}")
        if cfg.data.mode not in MODES:
            raise ValueError(f"data.mode '{cfg.data.mode}' is not one of {list(MODES)}")
        self.automatic_optimization = False
        self.cfg, self.real_meta = cfg, dict(real.metadata)
        cls, key = AGENTS[cfg.agent]
        self.model = cls(getattr(cfg, key), real.obs_dim, real.act_dim)
        self.real = _tensors(real)
        self.synth: Optional[dict[str, torch.Tensor]] = None
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.diffusion = None
        self.env_id = cfg.eval.env_id or str(real.metadata.get("env_id", ""))
        self.history: list[dict] = []
        self.agent_step = 0
        self.synth_stats: list[dict] = []

    # ---------------------------------------------------------------------------------------------- data
    def _load_diffusion(self):
        if self.diffusion is None:
            from worldgen.rl.pgd import load_trajectory_model as load_pgd

            if not self.cfg.data.diffusion_ckpt:
                raise ValueError(f"data.mode={self.cfg.data.mode} needs data.diffusion_ckpt")
            self.diffusion, _ = load_pgd(self.cfg.data.diffusion_ckpt)
            if self.cfg.data.sample_steps:
                self.diffusion.cfg.sampler.n_steps = self.cfg.data.sample_steps
        return self.diffusion

    def regenerate(self, guided: bool) -> None:
        from worldgen.rl.pgd import mean_log_likelihood

        model = self._load_diffusion()
        policy = self.model.policy if guided else None
        gcfg = self.cfg.guidance if guided else GuidanceConfig(coeff=0.0)
        was_training = self.model.training
        self.model.eval()
        x = model.sample(self.cfg.data.n_traj, policy, gcfg, seed=self.cfg.seed + 1000 * len(self.synth_stats))
        self.model.train(was_training)
        ds = model.to_dataset(x)
        self.synth = _tensors(ds)
        stat = {"step": self.agent_step, "guided": guided, "transitions": len(ds),
                "target_log_likelihood": mean_log_likelihood(self.model.policy, ds)}
        self.synth_stats.append(stat)
        log.info("synthetic data: %s", stat)

    def _draw(self, src: dict[str, torch.Tensor], n: int) -> dict[str, torch.Tensor]:
        idx = torch.randint(0, len(src["rewards"]), (n,), generator=self.gen)
        return {k: v[idx] for k, v in src.items()}

    def batch(self) -> dict[str, torch.Tensor]:
        c = self.cfg.data
        if c.mode == "real" or self.synth is None:
            b = self._draw(self.real, c.batch_size)
        else:
            n_syn = int(round(c.batch_size * c.synth_ratio))
            s, r = self._draw(self.synth, n_syn), self._draw(self.real, c.batch_size - n_syn)
            b = {k: torch.cat([s[k], r[k]]) for k in s}
        return {k: v.to(self.device) for k, v in b.items()}

    # ------------------------------------------------------------------------------------------ training
    def on_train_start(self) -> None:
        if self.cfg.data.mode != "real" and self.synth is None:
            self.regenerate(guided=False)

    def training_step(self, step_t, batch_idx):
        step = int(step_t)
        self.agent_step = step
        c = self.cfg.data
        if c.mode == "pgd" and step > 0 and step % c.regen_every == 0:
            self.regenerate(guided=True)
        opts = dict(zip(self.model.param_groups().keys(), self.optimizers()))

        def stepper(name: str, loss: torch.Tensor) -> None:
            opt = opts[name]
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()
        logs = self.model.train_step(self.batch(), step, stepper, self.gen)
        self.agent_step = step + 1
        self.log_dict({f"train/{k}": float(v) for k, v in logs.items()}, prog_bar=False)
        last = self.agent_step == self.cfg.steps
        if self.env_id and (last or (self.cfg.eval.every and self.agent_step % self.cfg.eval.every == 0)):
            self.evaluate()

    def configure_optimizers(self):
        return [torch.optim.Adam(params, lr=lr) for params, lr in self.model.param_groups().values()]

    def evaluate(self, log: bool = True) -> dict:
        from worldgen.rl.evaluation import actor_fn, evaluate

        ref = None
        try:
            ref = reference_returns(self.env_id, self.real_meta)
        except ValueError:
            pass
        self.model.eval()
        res = evaluate(actor_fn(self.model.policy, deterministic=True), self.env_id, self.cfg.eval.episodes,
                       seed=self.cfg.seed + 100_000, ref=ref)
        if "ref_min_score" in self.real_meta and "ref_max_score" in self.real_meta:
            own = (float(self.real_meta["ref_min_score"]), float(self.real_meta["ref_max_score"]))
            if own[0] != own[1]:
                res["normalized_score_self_calibrated"] = float(normalized_score(res["return_mean"], own))
        self.model.train()
        res["step"] = self.agent_step
        self.history.append(res)
        if log:
            self.log_dict({f"eval/{k}": float(v) for k, v in res.items() if k != "step"})
        return res

    def on_train_end(self) -> None:
        if self.env_id and (not self.history or self.history[-1]["step"] != self.agent_step):
            self.evaluate(log=False)


class StepStream(IterableDataset):
    """Yields the step numbers 0 .. n-1; the module draws its own minibatches."""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self) -> int:
        return self.n


class PacingDataModule(L.LightningDataModule):
    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps

    def train_dataloader(self):
        return DataLoader(StepStream(self.steps), batch_size=None)


def build(cfg: Config):
    if not cfg.data.path:
        raise ValueError("data.path: set the real D4RL-layout dataset")
    real = load_dataset(cfg.data.path, env_id=cfg.eval.env_id or None)
    return AgentModule(cfg, real), PacingDataModule(cfg.steps)


def export(cfg: Config, module: AgentModule, out_dir) -> None:
    from worldgen.io import write_json
    from worldgen.rl.policy import save_policy

    save_policy(Path(out_dir) / "policy", module.model.policy, {"agent": cfg.agent, "data_mode": cfg.data.mode})
    write_json(Path(out_dir) / "eval.json", {"agent": cfg.agent, "mode": cfg.data.mode, "env_id": module.env_id,
                                             "history": module.history, "synthetic": module.synth_stats,
                                             "final": module.history[-1] if module.history else None})


__all__ = ["Config", "AgentModule", "build", "export", "AGENTS", "MODES"]
