"""``worldgen bench pgd``: ``main(PGDBenchConfig)`` times unguided and guided sampling of a tiny random model."""
from worldgen.commands.bench.pgd import PGDBenchConfig, main


def test_main_times_guided_and_unguided():
    r = main(PGDBenchConfig(n_traj=2, n_steps=2, horizon=8, obs_dim=3, act_dim=1, features=8, blocks=2, repeats=1))
    assert r["unguided_traj_per_s"] > 0 and r["guided_traj_per_s"] > 0 and r["n_steps"] == 2
