"""Entry points of the ``worldgen`` CLI: argument parsing, ``main(cfg)`` per subcommand, benches, eval scripts.

This is the top layer (docs/architecture.md): code here may import any part of the library, and nothing in the
library imports it. One module per command group (``data``, ``tokenize``, ``train``, ``generate``, ``eval``, ``pgd``,
``ravl``, ``checkpoints``, ``demo``; the benches are a subpackage, one module per bench). Every leaf has

* a dataclass of its settings (the library's own config where one exists, e.g. ``worldgen.data.generate.GenConfig``);
* ``main(cfg)`` -- ``<leaf>_main(cfg)`` in a module with several leaves -- that does the work and returns its result
  (a summary dict, a path ...); tests call it directly, with no argument parsing;
* ``configure(parser)`` -- ``configure_<leaf>`` -- that adds the leaf's arguments and returns ``handler(args) -> int``,
  which builds the dataclass (``from_args``), calls ``main`` and prints.

``worldgen.cli.COMMANDS`` names each ``configure`` as a ``"module:function"`` spec and imports a module only when its
subcommand runs, so every module here imports the library lazily inside its functions where the import is heavy.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import fields
from typing import Any, Callable

Handler = Callable[[argparse.Namespace], int]


def from_args(cls: type, args: argparse.Namespace, **given: Any) -> Any:
    """``cls(...)`` from the entries of ``args`` named like its fields; ``given`` adds or replaces fields."""
    kw = {f.name: getattr(args, f.name) for f in fields(cls) if f.init and hasattr(args, f.name)}
    return cls(**{**kw, **given})


def print_json(obj: Any, indent: int | None = 2) -> None:
    print(json.dumps(obj, indent=indent))


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def named_paths(items: list[str], flag: str) -> dict[str, str]:
    """``["NAME=PATH", ...]`` -> ``{NAME: PATH}``; an item without ``=`` is an error naming ``flag``."""
    bad = [x for x in items if "=" not in x]
    if bad:
        raise ValueError(f"{flag}: expected NAME=PATH, got {bad}")
    return dict(x.split("=", 1) for x in items)


__all__ = ["Handler", "from_args", "print_json", "comma_list", "named_paths"]
