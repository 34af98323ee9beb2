"""Entry points of the ``worldgen`` CLI: argument parsing, ``main(cfg)`` per subcommand, benches, eval scripts.

This is the top layer (docs/architecture.md): code here may import any part of the library, and nothing in the
library imports it. Each module is named by a ``"module:function"`` spec in ``worldgen.cli.COMMANDS`` and is
imported only when its subcommand runs.
"""
