"""Command line ``milmer``: the table of commands; each command lives in its own module.

=============== ========================== =============================================
command         module                     needs
=============== ========================== =============================================
demo-data       :mod:`.demo_data`          the ``demo`` extra (synthetic data)
preprocess      :mod:`.preprocess`         the runtime
infer           :mod:`.infer`              the runtime (also the ``milmer-infer`` entry point)
live            :mod:`.live`               the ``live`` extra (LSL), imported when the command runs
serve           :mod:`.serve`              the ``serve`` extra (Triton)
score-study     :mod:`.score_study`        the runtime and a Triton server
train           :mod:`.train`              the ``training`` extra (torch)
export          :mod:`.export`             the ``export`` extra
export-triton   :mod:`.export`             the ``export`` extra
bench           :mod:`.bench`              the ``export`` extra
demo            :mod:`.demo`               the ``training`` and ``export`` extras
=============== ========================== =============================================

Every command imports its implementation lazily, so ``milmer --help`` and the runtime commands
never load torch (or numpy). Errors and exit codes: :mod:`.errors` (0 success, 2 bad input or
usage, 1 internal error).
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from . import bench, demo, demo_data, export, infer, live, preprocess, score_study, serve, train
from .errors import run_app
from .options import lazy_epilog

__all__ = ["app", "main"]

app = typer.Typer(
    name="milmer",
    help="Milmer: EEG + facial-video emotion recognition, from training to deployment.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.command("demo-data")(demo_data.demo_data)
app.command("preprocess")(preprocess.preprocess)
app.command("infer")(infer.infer)  # the same command as `milmer-infer`
app.command("live")(live.live)
app.command("serve")(serve.serve)
app.command("score-study")(score_study.score_study)
app.command(
    "train", cls=lazy_epilog(train.train_epilog), help=train.TRAIN_HELP, context_settings=train.TRAIN_CONTEXT
)(train.train)
app.command("export")(export.export)
app.command("export-triton")(export.export_triton)
app.command("bench", cls=lazy_epilog(bench.bench_epilog))(bench.bench)
app.command("demo")(demo.demo)


def main(argv: Optional[list[str]] = None) -> int:
    """Console entry point ``milmer``."""
    return run_app(app, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
