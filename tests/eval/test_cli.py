import json

import pytest

from worldgen.cli import main as cli
from worldgen.data.synthetic import make_synthetic_episodes
from worldgen.data.video import write_video

from tests.helpers import CONTAINERS, have_encoder, write_container_video

from .helpers import SIZE, moving_videos, random_videos


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("fvd")
    make_synthetic_episodes(root / "real", 3, 40, size=(32, 64), seed=0)
    make_synthetic_episodes(root / "fake", 3, 40, size=(32, 64), seed=1)
    return root


@pytest.mark.filterwarnings("ignore:Fréchet distance")
def test_eval_fvd_drift_on_episode_folders_writes_json_and_plot(episodes, tmp_path, capsys):
    out = tmp_path / "drift.json"
    rc = cli(["eval", "fvd", "--real", str(episodes / "real"), "--fake", str(episodes / "fake"), "--protocol",
              "drift", "--detector", "random", "--size", str(SIZE), "--stride", "8", "--seeds", "0", "1",
              "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())
    assert (tmp_path / "drift.png").is_file() and res["plot"] == "drift.png"
    assert res["n_real"] == res["n_fake"] == 3 and res["real"]["resolutions"] == [[32, 64]]
    assert res["curve"]["x"] == [0, 8, 16, 24] and len(res["curve"]["std"]) == 4
    assert set(res["runs"][0]["real_offsets"]) == {f"synth-0000-0000{i}" for i in range(3)}
    assert res["comparable_to_published"] is False and res["command"].startswith("worldgen eval fvd")
    assert "NOT comparable" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Fréchet distance")
def test_eval_fvd_on_nested_mp4_folders(tmp_path):
    for i, v in enumerate(moving_videos(2, 16, 0)):
        write_video(tmp_path / "real" / f"sub{i}" / f"{i}.mp4", v)
    for i, v in enumerate(random_videos(3, 18, 1)):
        write_video(tmp_path / "fake" / f"{i}.mp4", v)
    (tmp_path / "fake" / ".hidden").mkdir()
    write_video(tmp_path / "fake" / ".hidden" / "x.mp4", random_videos(1, 4, 1)[0])  # skipped (hidden, too short)
    rc = cli(["eval", "fvd", "--real", str(tmp_path / "real"), "--fake", str(tmp_path / "fake"), "--size",
              str(SIZE), "--out", str(tmp_path / "fvd16.json")])
    res = json.loads((tmp_path / "fvd16.json").read_text())
    assert rc == 0 and res["n_real"] == 2 and res["n_fake"] == 3 and res["fvd"] > 0
    assert set(res["runs"][0]["real_offsets"]) == {"sub0/0.mp4", "sub1/1.mp4"}


def test_cli_errors_are_clean(tmp_path, capsys):
    rc = cli(["eval", "fvd", "--real", str(tmp_path), "--fake", str(tmp_path), "--detector",
              f"i3d:{tmp_path / 'i3d_torchscript.pt'}", "--out", str(tmp_path / "x.json")])
    assert rc == 2 and "never downloads" in capsys.readouterr().err
    rc = cli(["eval", "fvd", "--real", str(tmp_path / "none"), "--fake", str(tmp_path), "--out",
              str(tmp_path / "x.json")])
    assert rc == 2 and "no such file or folder" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.filterwarnings("ignore:Fréchet distance")
def test_eval_fvd_reads_every_container_and_names_skipped_files(tmp_path, capsys):
    """mp4, mov, mkv, webm (VP9) and avi all count (a container whose encoder this PyAV lacks is left out and said
    so); a text file and a renamed one are skipped with the reason, in the JSON and on stderr. The folder against
    itself with random offsets is 0."""
    videos = moving_videos(len(CONTAINERS), 20, 0, h=32, w=48)
    made = [suffix for (suffix, codec, muxer), v in zip(CONTAINERS, videos) if have_encoder(codec)
            and write_container_video(tmp_path / "v" / f"clip{suffix}", v, codec, muxer)]
    missing = sorted({s for s, *_ in CONTAINERS} - set(made))
    print(f"containers without an encoder in this PyAV build (not tested): {missing or 'none'}")
    (tmp_path / "v" / "notes.txt").write_text("hello")
    (tmp_path / "v" / "renamed.mp4").write_text("a text file")
    capsys.readouterr()
    rc = cli(["eval", "fvd", "--real", str(tmp_path / "v"), "--fake", str(tmp_path / "v"), "--size", str(SIZE),
              "--out", str(tmp_path / "fvd.json")])
    res, err = json.loads((tmp_path / "fvd.json").read_text()), capsys.readouterr().err
    assert rc == 0 and res["n_real"] == res["n_fake"] == len(made) and abs(res["fvd"]) < 1e-6
    assert sorted(res["runs"][0]["real_offsets"]) == sorted(f"clip{s}" for s in made)
    skipped = {s["path"].rsplit("/", 1)[-1]: s["problem"] for s in res["skipped"]["real"]}
    assert set(skipped) == {"notes.txt", "renamed.mp4"} and "cannot open video" in skipped["renamed.mp4"]
    assert "warning: real: skipped" in err and "notes.txt: not a video file (.txt" in err


def test_eval_fvd_refuses_a_folder_without_usable_videos(tmp_path, capsys):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "notes.txt").write_text("hello")
    (tmp_path / "v" / "empty.webm").write_bytes(b"")
    rc = cli(["eval", "fvd", "--real", str(tmp_path / "v"), "--fake", str(tmp_path / "v"), "--size", str(SIZE),
              "--out", str(tmp_path / "fvd.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "no usable videos" in err and "empty.webm: empty file (0 bytes)" in err
    assert "notes.txt: not a video file" in err and not (tmp_path / "fvd.json").exists()
