"""worldgen.rl.collect: a behaviour SAC run paused by ``stop_after`` (or killed) resumes from its resume state and
ends exactly where an uninterrupted run ends (same checkpoints, same replay buffer)."""
import numpy as np
import pytest
import torch

from worldgen.rl.collect import BehaviourConfig, main, train_behaviour
from worldgen.rl.envs import CHEAP_ENV

CFG = dict(train_steps=300, start_steps=50, batch_size=16, hidden=[8], eval_every=100, eval_episodes=1)


@pytest.mark.slow  # three short SAC runs (~10 s on a loaded machine)
def test_paused_and_resumed_run_equals_uninterrupted(tmp_path):
    torch.set_num_threads(1)
    whole = train_behaviour(CHEAP_ENV, BehaviourConfig(**CFG), seed=0, progress=False, state_dir=tmp_path / "a")
    paused = train_behaviour(CHEAP_ENV, BehaviourConfig(**CFG, stop_after=150), seed=0, progress=False,
                             state_dir=tmp_path / "b")
    assert paused is None and (tmp_path / "b" / "resume.json").is_file()
    assert len(list((tmp_path / "b").glob("resume-*"))) == 1  # saved at the episode end after step 100: step 200
    resumed = train_behaviour(CHEAP_ENV, BehaviourConfig(**CFG), seed=0, progress=False, state_dir=tmp_path / "b")
    assert [(s, r) for s, r, _ in resumed.checkpoints] == [(s, r) for s, r, _ in whole.checkpoints]
    for (_, _, a), (_, _, b) in zip(resumed.checkpoints, whole.checkpoints):
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    for k, v in whole.replay.arrays().items():
        np.testing.assert_array_equal(resumed.replay.arrays()[k], v, err_msg=k)
    assert resumed.random_return == whole.random_return


def test_main_reports_a_pause_and_needs_a_behaviour_dir(tmp_path):
    out = main(CHEAP_ENV, "medium", tmp_path / "m.hdf5", steps=50, behaviour=BehaviourConfig(**CFG, stop_after=150),
               behaviour_dir=tmp_path / "beh")
    assert out["paused"] and not (tmp_path / "m.hdf5").exists()
    with pytest.raises(ValueError, match="--stop-after needs --behaviour-dir"):
        main(CHEAP_ENV, "medium", tmp_path / "m.hdf5", steps=50, behaviour=BehaviourConfig(**CFG, stop_after=150))


def test_a_finished_behaviour_run_is_reused_only_for_the_same_length(tmp_path):
    """The five kinds come from one cached run; asking for a different --train-steps is refused, never answered
    with the cached (shorter or longer) run."""
    beh = tmp_path / "beh"
    main(CHEAP_ENV, "random", tmp_path / "r.hdf5", steps=50, behaviour=BehaviourConfig(**CFG), behaviour_dir=beh)
    out = main(CHEAP_ENV, "medium", tmp_path / "m.hdf5", steps=50, behaviour=BehaviourConfig(**CFG),
               behaviour_dir=beh)
    assert out["transitions"] == 50
    with pytest.raises(ValueError, match="has 300 SAC steps, not the --train-steps 600"):
        main(CHEAP_ENV, "expert", tmp_path / "e.hdf5", steps=50,
             behaviour=BehaviourConfig(**{**CFG, "train_steps": 600}), behaviour_dir=beh)
    assert not (tmp_path / "e.hdf5").exists()
