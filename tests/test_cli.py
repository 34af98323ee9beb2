"""The one CLI: help at every level, registered commands, clean errors."""
import pytest

from tests.helpers import run_cli
from worldgen import cli


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ["data", "tokenize", "train", "generate", "eval", "pgd", "ravl", "bench", "demo"]:
        assert name in out


@pytest.mark.parametrize("group", [g for g, (_, body) in cli.COMMANDS.items() if isinstance(body, dict)])
def test_group_help_lists_subcommands(group, capsys):
    with pytest.raises(SystemExit):
        cli.main([group, "--help"])
    out = capsys.readouterr().out
    for leaf in cli.COMMANDS[group][1]:
        assert leaf in out


def test_train_help_and_config_error_are_clean(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "key=value" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: toy\nmodle: {}\n")
    assert cli.main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'modle'" in err and "Traceback" not in err


def test_unbuilt_command_says_so(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "future", ("not yet", "worldgen.does_not_exist:configure"))
    assert cli.main(["future"]) == 3
    assert "not built yet" in capsys.readouterr().err


@pytest.mark.slow  # subprocess
def test_console_entry_point_runs_in_subprocess():
    proc = run_cli("--help")
    assert "worldgen" in proc.stdout
