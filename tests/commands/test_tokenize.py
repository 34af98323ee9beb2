"""``worldgen tokenize``: ``main(TokenizeConfig)`` writes the token shards of a dataset."""
import json

from worldgen.commands.tokenize import TokenizeConfig, main


def test_main_from_dataclass(episodes, tokenizer_dir, tmp_path):
    out = tmp_path / "tokens"
    meta = main(TokenizeConfig(tokenizer=str(tokenizer_dir), data=str(episodes), out=str(out), chunk=4,
                               progress=False))
    assert meta["n_episodes"] == 3 and meta["grid"] == [4, 8]
    assert json.loads((out / "meta.json").read_text())["n_frames"] == meta["n_frames"] == 48
