"""Thin LightningModules, callbacks and the Trainer factory.

``TASKS`` maps the ``task`` named in an experiment YAML to the module that trains it. Each such module defines
``Config`` (a dataclass subclassing ``worldgen.config.ExperimentConfig``) and ``build(cfg) -> (LightningModule,
LightningDataModule)``; optionally ``export(cfg, module, out_dir)`` to write extra inference artefacts. A task
whose loop is not a Lightning one (``ravl``) defines ``train(cfg, command)`` instead of ``build`` and runs and writes
everything itself. Modules are named by import path so that ``worldgen train`` imports only the task it runs.
"""
TASKS = {
    "toy": "worldgen.lit.toy",  # tiny regression MLP that proves the training stack (DDP, nodes, resume)
    "vq_tokenizer": "worldgen.lit.tokenizer",  # DrivingWorld VQ video tokenizer
    "drivingworld": "worldgen.lit.worldmodel",  # DrivingWorld spatial-temporal GPT
    "artv": "worldgen.lit.artv",  # ART-V masked-diffusion frame generator
    "frame_ae": "worldgen.lit.frame_ae",  # per-frame autoencoder: ART-V's optional latent space
    "pgd": "worldgen.lit.pgd",  # policy-guided trajectory diffusion
    "agent": "worldgen.lit.agents",  # offline-RL agents (TD3+BC, IQL, SAC-N) on real / unguided / PGD data
    "ravl": "worldgen.lit.ravl",  # RAVL / Base offline model-based RL (its own loop: the module defines train)
}
