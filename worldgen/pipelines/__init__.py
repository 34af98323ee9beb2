"""Inference pipelines, one per generating family, shared by the CLI (``worldgen generate ...``) and the demo.

A pipeline does the orchestration around a family's model math: load the checkpoint folders (``worldgen.ckpt``),
build a context, roll out, decode (streamed, with past codes), write outputs. The math stays in the model packages
(``worldmodel.rollout``, ``artv.generate``); argument parsing stays in ``worldgen.commands``; page handling stays
in ``worldgen.demo``. Layer 7 (docs/architecture.md): may import data, tokenizer, the model families and eval,
never ``lit``.

* ``drivingworld``: VQ tokenizer + DrivingWorld GPT (``DrivingPipeline``, ``StreamingDecoder``, ``generate``).
* ``artv``: ART·V + its frame codec and text encoder (``ArtvPipeline``, ``generate``).
"""
