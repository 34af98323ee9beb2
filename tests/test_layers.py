"""The package's layers point one way (issue 12; docs/architecture.md).

Every module under ``worldgen/`` is parsed (``ast``, nothing is imported) and each of its imports -- top-level or
inside a function, absolute or relative, and ``importlib.import_module("literal")`` -- becomes an arrow
``module -> imported module``. An arrow is wrong when it points to a higher layer, between two model families
(layer 5 siblings), to the top-level ``demo/`` or ``tools/`` folders (outside the package), or to Lightning from below
``lit``. Path tricks that reach outside the package (``sys.path`` edits, ``Path(__file__).parents[n]`` above
``worldgen/``) are refused too. The failure message lists every offending arrow with both layers.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "worldgen"

CORE, NN, DIFFUSION, DATA, TOKENIZER, FAMILY, EVAL, PIPELINES, LIT, REGISTRY, ENTRY = range(11)
LAYER_NAMES = {CORE: "core", NN: "nn", DIFFUSION: "diffusion", DATA: "data", TOKENIZER: "tokenizer",
               FAMILY: "model family", EVAL: "eval", PIPELINES: "pipelines", LIT: "lit", REGISTRY: "registry",
               ENTRY: "entry point"}

# Every top-level module or subpackage of worldgen, and its layer. A new one must be added here (the test fails
# until it is), so that nobody forgets to decide where it sits.
LAYERS: dict[str, int] = {
    "worldgen": CORE, "worldgen.config": CORE, "worldgen.io": CORE, "worldgen.ckpt": CORE,
    "worldgen.nn": NN,
    "worldgen.diffusion": DIFFUSION,
    "worldgen.data": DATA,
    "worldgen.tokenizer": TOKENIZER,
    "worldgen.worldmodel": FAMILY, "worldgen.artv": FAMILY, "worldgen.rl": FAMILY,
    "worldgen.eval": EVAL,
    "worldgen.pipelines": PIPELINES,
    "worldgen.lit": LIT,
    "worldgen.registry": REGISTRY,
    "worldgen.commands": ENTRY, "worldgen.cli": ENTRY, "worldgen.checkpoints": ENTRY, "worldgen.demo": ENTRY,
    "worldgen.demo_launch": ENTRY,
}
OUTSIDE = ("demo", "tools", "tests", "configs")  # top-level folders of the repository, not part of the package
LIGHTNING = ("lightning", "pytorch_lightning")


@dataclass(frozen=True)
class Arrow:
    source: str  # importing module, e.g. worldgen.data.clips
    target: str  # imported module, e.g. worldgen.lit.data
    line: int


def module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(package_root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, package_root): p for p in sorted(package_root.rglob("*.py"))}


def _resolve_relative(source: str, is_package: bool, level: int, module: str | None) -> str:
    base = source.split(".") if is_package else source.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([module] if module else []))


def _literal_import(node: ast.Call) -> str | None:
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
    if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
        return str(node.args[0].value) if isinstance(node.args[0].value, str) else None
    return None


def imports_of(source: str, path: Path, known: set[str]) -> list[Arrow]:
    """Every module ``path`` imports (at any depth of its syntax tree)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    arrows = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            arrows += [Arrow(source, a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(source, is_package, node.level, node.module)
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            arrows += [Arrow(source, t, node.lineno) for t in subs or [base]]
        elif isinstance(node, ast.Call) and (target := _literal_import(node)):
            arrows.append(Arrow(source, target, node.lineno))
    return arrows


def layer_of(module: str) -> tuple[str, int] | None:
    """``(unit, layer)`` of a worldgen module: its top-level module or subpackage; None for other packages."""
    parts = module.split(".")
    if parts[0] != "worldgen":
        return None
    unit = ".".join(parts[:2])
    if unit not in LAYERS:
        raise KeyError(unit)
    return unit, LAYERS[unit]


def describe(arrow: Arrow, why: str) -> str:
    return f"{arrow.source}:{arrow.line} -> {arrow.target}: {why}"


def check_arrow(arrow: Arrow) -> str | None:
    """Why ``arrow`` runs against the layer order, or None when it is allowed."""
    src_unit, src_layer = layer_of(arrow.source)
    top = arrow.target.split(".")[0]
    if top in OUTSIDE:
        return describe(arrow, f"{LAYER_NAMES[src_layer]} ({src_layer}) imports the top-level '{top}/' folder, "
                               f"which is outside the package")
    if top in LIGHTNING and src_layer < LIT:
        return describe(arrow, f"{LAYER_NAMES[src_layer]} ({src_layer}) imports Lightning; only lit (8) and above may")
    target = layer_of(arrow.target)
    if target is None:
        return None
    dst_unit, dst_layer = target
    if dst_layer > src_layer:
        return describe(arrow, f"{LAYER_NAMES[src_layer]} ({src_layer}) imports {LAYER_NAMES[dst_layer]} ({dst_layer})")
    if dst_layer == src_layer == FAMILY and dst_unit != src_unit:
        return describe(arrow, f"model families are siblings: {src_unit} may not import {dst_unit}")
    return None


def _path_trick(node: ast.AST, depth: int) -> str | None:
    """``sys.path`` edits, and ``Path(__file__)...parents[n]`` / ``.parent`` chains that climb out of worldgen/."""
    if isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name) \
            and node.value.id == "sys":
        return "touches sys.path (import through the package, never by editing the path)"
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents" \
            and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int) \
            and "__file__" in ast.unparse(node.value) and node.slice.value >= depth:
        return f"climbs out of the package with {ast.unparse(node)} (use a CLI argument or package data)"
    if isinstance(node, ast.Attribute) and node.attr == "parent" and "__file__" in ast.unparse(node):
        climbs = ast.unparse(node).count(".parent") - 1  # Path(__file__).parent is the module's own folder
        if climbs >= depth:
            return f"climbs out of the package with {ast.unparse(node)} (use a CLI argument or package data)"
    return None


def path_tricks(source: str, path: Path) -> list[str]:
    depth = len(source.split(".")) - (0 if path.name == "__init__.py" else 1)  # folders between file and repo
    found: dict[int, str] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if why := _path_trick(node, depth):
            found.setdefault(node.lineno, why)  # one report per line (a .parent chain nests several nodes)
    return [f"{source}:{line}: {why}" for line, why in sorted(found.items())]


def violations(package_root: Path = PACKAGE) -> tuple[list[str], list[str]]:
    """(arrows against the layer order, worldgen modules whose top-level unit has no layer)."""
    modules = package_modules(package_root)
    known = set(modules)
    bad, unmapped = [], set()
    for name, path in modules.items():
        try:
            layer_of(name)
        except KeyError as e:
            unmapped.add(e.args[0])
            continue
        for arrow in imports_of(name, path, known):
            try:
                why = check_arrow(arrow)
            except KeyError as e:
                unmapped.add(e.args[0])
                continue
            if why:
                bad.append(why)
        bad += path_tricks(name, path)
    return sorted(set(bad)), sorted(unmapped)


def test_every_top_level_module_has_a_layer():
    _, unmapped = violations()
    assert not unmapped, ("worldgen modules/subpackages without a layer (add them to LAYERS in tests/test_layers.py "
                          "and to docs/architecture.md): " + ", ".join(unmapped))


def test_imports_follow_the_layer_order():
    bad, _ = violations()
    assert not bad, f"{len(bad)} import(s) run against the layer order:\n  " + "\n  ".join(bad)


def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "worldgen"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_checker_catches_a_backward_import(tmp_path):
    root = _fake_package(tmp_path, {
        "data/__init__.py": "",
        "data/clips.py": "def f():\n    from worldgen.lit.data import make_loader\n",
        "data/rel.py": "from ..rl import agents\n",
        "lit/__init__.py": "", "lit/data.py": "",
        "rl/__init__.py": "import importlib\nm = importlib.import_module('worldgen.artv.model')\n",
        "rl/agents.py": "from . import helpers\nimport lightning as L\n",
        "rl/helpers.py": "",
        "rl/cli.py": "from pathlib import Path\nC = Path(__file__).resolve().parents[2] / 'configs'\n",
        "artv/__init__.py": "", "artv/model.py": "",
        "tokenizer/__init__.py": "from worldgen.data import clips\nimport worldgen.nn.attention\n",
        "nn/__init__.py": "", "nn/attention.py": "",
        "demo_launch.py": "import sys\nsys.path.insert(0, '.')\nfrom demo import app\n",
    })
    bad, unmapped = violations(root)
    text = "\n".join(bad)
    assert unmapped == []
    assert "worldgen.data.clips:2 -> worldgen.lit.data: data (3) imports lit (8)" in text  # inside a function
    assert "worldgen.data.rel:1 -> worldgen.rl.agents: data (3) imports model family (5)" in text  # relative
    assert "worldgen.rl:2 -> worldgen.artv.model: model families are siblings" in text  # import_module literal
    assert "worldgen.rl.agents:2 -> lightning: model family (5) imports Lightning" in text
    assert "worldgen.rl.cli:2: climbs out of the package" in text
    assert "worldgen.demo_launch:2: touches sys.path" in text
    assert "worldgen.demo_launch:3 -> demo: entry point (10) imports the top-level 'demo/' folder" in text
    assert not any(a.startswith(("worldgen.tokenizer", "worldgen.rl.agents:1")) for a in bad), bad  # downward: fine
    assert len(bad) == 7, bad


def test_checker_requires_a_layer_for_new_packages(tmp_path):
    root = _fake_package(tmp_path, {"newthing/__init__.py": "", "data/__init__.py": "from worldgen import newthing\n"})
    assert violations(root)[1] == ["worldgen.newthing"]


@pytest.mark.parametrize("source,is_package,level,module,expected", [
    ("worldgen.data.clips", False, 1, "video", "worldgen.data.video"),
    ("worldgen.data.clips", False, 2, "lit", "worldgen.lit"),
    ("worldgen.data", True, 1, "clips", "worldgen.data.clips"),
    ("worldgen.data", True, 2, None, "worldgen"),
])
def test_relative_imports_resolve(source, is_package, level, module, expected):
    assert _resolve_relative(source, is_package, level, module) == expected
