"""The `musicgen` command line: each command parses, validates (through the configs)
and calls the library. Commands live by subject in the modules of this package.

Errors a user can cause print one line (`error: ...`) and exit with code 2;
nothing here prints a traceback unless MUSICGEN_DEBUG=1.
"""

from musicgen.cli import data, live, music, passage, training  # noqa: F401 - registers the commands
from musicgen.cli.group import cli, main

__all__ = ["cli", "main"]
