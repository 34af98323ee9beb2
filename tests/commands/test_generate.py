"""``worldgen generate drivingworld|artv``: ``<leaf>_main(GenerateConfig)`` runs the family's pipeline; the CLI
builds the same dataclasses (the pipelines' own tests: tests/pipelines/)."""
from worldgen.cli import main as cli
from worldgen.commands.generate import artv_main, drivingworld_main


def test_drivingworld_main_tokens_only(gpt_run, tmp_path):
    from worldgen.pipelines.drivingworld import GenerateConfig

    run, tokens = gpt_run
    out = tmp_path / "roll.mp4"
    s = drivingworld_main(GenerateConfig(ckpt=str(run), tokens=str(tokens), frames=3, out=str(out),
                                         manoeuvre="lane_change_left"))
    assert s["frames"] == 3 and (tmp_path / "roll.tokens.safetensors").is_file() and not out.exists()


def test_artv_main_and_cli(artv_dir, tmp_path, capsys):
    from worldgen.artv.generate import GenerateOptions
    from worldgen.data.video import read_video
    from worldgen.pipelines.artv import GenerateConfig

    frames = artv_main(GenerateConfig(ckpt=str(artv_dir), prompts=["a road"], out=str(tmp_path / "a.mp4"),
                                      progress=False, options=GenerateOptions(frames=3, steps=1)))
    assert frames.shape == (3, 16, 32, 3) and read_video(tmp_path / "a.mp4").shape == frames.shape
    assert cli(["generate", "artv", "--ckpt", str(artv_dir), "--prompt", "a", "--prompt", "b", "--switch-at", "2",
                "--frames", "3", "--steps", "1", "--churn", "0.5", "--out", str(tmp_path / "b.mp4")]) == 0
    resolved = (tmp_path / "b.yaml").read_text()
    assert "S_churn: 0.5" in resolved and "switch_at" in resolved and "wrote" in capsys.readouterr().out
