"""Thin LightningModules, DataModules, callbacks and the Trainer factory.

One module per task (``toy``, ``tokenizer``, ``worldmodel``, ``artv``, ``frame_ae``, ``pgd``, ``agents``, ``ravl``).
Each defines ``Config`` (a dataclass subclassing ``worldgen.config.ExperimentConfig``) and ``build(cfg) ->
(LightningModule, LightningDataModule)``; optionally ``export(cfg, module, out_dir)`` to write extra inference
artefacts. A task whose loop is not a Lightning one (``ravl``) defines ``train(cfg, command)`` instead of ``build``
and runs and writes everything itself. ``worldgen.lit.train.fit(cfg, task_module)`` trains one; which module trains
which ``task`` is recorded once, in ``worldgen.registry`` (a layer above this one), never here.
"""
