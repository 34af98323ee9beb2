"""``worldgen bench ...``: benchmarks that print one JSON object, one module per bench.

``worldmodel`` (``bench rollout``, ``bench train``: the DrivingWorld GPT), ``data`` (the driving generator), ``fvd``
(the FVD evaluator's overhead and memory), ``pgd`` (guided vs unguided trajectory sampling). Speed and memory targets
are measured here and reported in docs/results, never asserted by timed tests.
"""
