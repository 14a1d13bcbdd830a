"""The `lookalike` Typer application and its entry point."""

from __future__ import annotations

import sys

import typer

from lookalike.cli import (
    bench_cmd,
    compare_cmd,
    demo_cmd,
    dupes_cmd,
    hash_cmd,
    index_cmd,
    search_cmd,
    serve_cmd,
)
from lookalike.cli.output import report_error
from lookalike.errors import LookalikeError

app = typer.Typer(
    name="lookalike",
    help="Find look-alike images with perceptual hashes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("hash")(hash_cmd.hash_command)
app.command("compare")(compare_cmd.compare_command)
app.add_typer(index_cmd.app, name="index")
app.command("search")(search_cmd.search_command)
app.command("dupes")(dupes_cmd.dupes_command)
app.command("serve")(serve_cmd.serve_command)
app.command("demo")(demo_cmd.demo_command)
app.add_typer(bench_cmd.bench_app)


def main() -> None:
    """Console entry point: exit 0 done, 1 done with failures, 2 usage error; never a traceback."""
    try:
        app()
    except LookalikeError as exc:
        report_error(str(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        report_error("interrupted")
        sys.exit(130)
