"""The one CLI: help at every level, every leaf registered and importable, clean errors, a light ``--help``."""
import subprocess
import sys

import pytest

from tests.helpers import ROOT, run_cli
from worldgen import cli, registry

LEAVES = [(g, leaf) for g, (_, body) in cli.COMMANDS.items() if isinstance(body, dict) for leaf in body] + \
         [(g,) for g, (_, body) in cli.COMMANDS.items() if isinstance(body, str)]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ["data", "tokenize", "train", "generate", "eval", "pgd", "ravl", "bench", "checkpoints", "demo"]:
        assert name in out


@pytest.mark.parametrize("group", [g for g, (_, body) in cli.COMMANDS.items() if isinstance(body, dict)])
def test_group_help_lists_subcommands(group, capsys):
    with pytest.raises(SystemExit):
        cli.main([group, "--help"])
    out = capsys.readouterr().out
    for leaf in cli.COMMANDS[group][1]:
        assert leaf in out


@pytest.mark.parametrize("argv", LEAVES, ids=" ".join)
def test_every_leaf_has_help_from_worldgen_commands(argv, capsys):
    spec = cli.COMMANDS[argv[0]][1] if len(argv) == 1 else cli.COMMANDS[argv[0]][1][argv[1]][1]
    assert spec.startswith("worldgen.commands."), spec  # argument parsing lives in worldgen/commands/
    with pytest.raises(SystemExit) as e:
        cli.main([*argv, "--help"])
    assert e.value.code == 0 and f"usage: worldgen {' '.join(argv)}" in capsys.readouterr().out


def test_generate_group_is_the_registry():
    group = dict(cli.COMMANDS["generate"][1])
    assert group.pop("image")[1] == "worldgen.commands.generate:configure_image"  # the prior's leaf, not a family
    assert group == registry.GENERATE and set(registry.GENERATE) == {"drivingworld", "artv"}


def test_train_help_and_config_error_are_clean(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    assert "key=value" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: toy\nmodle: {}\n")
    assert cli.main(["train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'modle'" in err and "Traceback" not in err


def test_group_without_leaf_prints_its_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["eval"])
    assert "tokenizer" in capsys.readouterr().out


@pytest.mark.slow  # subprocess
def test_console_entry_point_runs_in_subprocess():
    proc = run_cli("--help")
    assert "worldgen" in proc.stdout


@pytest.mark.slow  # subprocess
def test_top_level_help_imports_no_leaf_module():
    code = ("import sys; from worldgen import cli; cli.build_parser(['--help']); "
            "print(sorted(m for m in sys.modules if m.startswith(('torch', 'lightning', 'worldgen.commands.'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
