"""Evaluation of generated videos: Fréchet Video Distance and long-horizon protocols (docs/fvd.md).

Modules: ``i3d`` (the Inception-I3D network), ``detectors`` (weights, preprocessing, the random test detector),
``stats`` (streaming ``FeatureStats``, 1/N covariance), ``frechet`` (``frechet_distance``), ``videos`` (inputs),
``protocols`` (``PROTOCOLS``, ``evaluate``, ``fvd_drift``), ``plots``, ``cli`` (``worldgen eval fvd``) and ``bench``
(``worldgen bench fvd``). Nothing is imported here, so ``import worldgen.eval`` stays cheap.
"""
