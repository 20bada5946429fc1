"""The command line's error handling: exit codes, one-line messages, no tracebacks.

Exit codes: 0 success, 2 bad input or usage, 1 internal error or a fault outside milmer. Bad input
(a :class:`~milmer.runtime.check.MilmerInputError`, or a Click usage error) is one line on stderr and
never a traceback; so is a fault outside milmer (a
:class:`~milmer.runtime.check.MilmerExternalError`: a server gone or silent; a full disk), which
names its cause and is not called a bug; an internal error prints a traceback only with
``MILMER_DEBUG=1``. Every command of
``milmer`` and ``milmer-infer`` is wrapped in :func:`handle_errors` and run by :func:`run_app`.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable
from typing import Any, Optional, TypeVar

import typer

from milmer.runtime.check import MilmerExternalError, MilmerInputError
from milmer.runtime.errors import invalid_value
from milmer.runtime.dependencies import missing_dependency_as_input_error

__all__ = ["EXIT_OK", "EXIT_INTERNAL", "EXIT_USAGE", "print_error", "finite_option", "handle_errors", "run_app"]

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])


def print_error(message: str) -> None:
    """``message`` on stderr, as plain text (no rich markup, no highlighting)."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


def finite_option(value: Any) -> Any:
    """Option callback: refuse ``nan`` and ``inf`` for a float option (Click parses both)."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        raise typer.BadParameter("not a finite number")
    return value


def handle_errors(func: F) -> F:
    """Map user errors to exit 2 and anything else to exit 1, without tracebacks."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with missing_dependency_as_input_error():
                return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except MilmerInputError as err:
            print_error(f"Error: {err}")
            raise typer.Exit(EXIT_USAGE) from None
        except MilmerExternalError as err:
            print_error(f"Error: {err}")
            raise typer.Exit(EXIT_INTERNAL) from None
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise _internal(err) from None
            where = f" writing {err.filename}" if err.filename else ""
            print_error(f"Error: no space left on device{where}; free some space and rerun.")
            raise typer.Exit(EXIT_INTERNAL) from None
        except KeyboardInterrupt:
            print_error("Interrupted.")
            raise typer.Exit(130) from None
        except Exception as err:  # noqa: BLE001 - the CLI boundary
            raise _internal(err) from None

    return wrapper  # type: ignore[return-value]


def _internal(err: Exception) -> BaseException:
    """What to raise for an unexpected error: the error itself with ``MILMER_DEBUG`` set (its
    traceback), else exit 1 after one line that calls it a bug."""
    if os.environ.get("MILMER_DEBUG"):
        return err
    print_error(
        f"Internal error: {type(err).__name__}: {err}\n"
        "This is a bug in milmer; rerun with MILMER_DEBUG=1 for the traceback and report it."
    )
    return typer.Exit(EXIT_INTERNAL)



def run_app(typer_app: typer.Typer, argv: Optional[list[str]]) -> int:
    """Run ``typer_app`` on ``argv`` (default ``sys.argv[1:]``) and return the exit code.

    Every usage error is one line on stderr (exit 2): a bad value names the option, what it
    accepts and what was received (``Invalid value for '--offset': expected a finite number, got
    'abc'.``, ``... '--batch': expected an integer >= 1, got 0.``: the range comes from the option's
    ``min``/``max``); a missing or unknown option or argument is Click's message with where to find
    help. No usage box, no traceback.
    Flags show no value type in the help (Typer 0.29's rich help gives every flag ``<bool>``,
    even ``--help``).
    """
    from typer.main import get_command

    command = get_command(typer_app)
    _hide_flag_types(command)
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    prog = typer_app.info.name if isinstance(typer_app.info.name, str) else None
    click_exceptions = _click_exceptions()
    try:
        result = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click_exceptions.ClickException as err:
        if type(err).__name__ == "NoArgsIsHelpError":  # the help was printed
            return EXIT_USAGE
        print_error(f"Error: {_usage_error_message(err, args)}")
        return err.exit_code if isinstance(err, click_exceptions.UsageError) else EXIT_USAGE
    except typer.Abort:
        print_error("Aborted.")
        return EXIT_INTERNAL
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)
    return result if isinstance(result, int) else EXIT_OK


def _click_exceptions() -> Any:
    """Click's exception module: vendored in Typer >= 0.2x (``typer._click``), else click's own."""
    try:
        from typer._click import exceptions
    except ImportError:  # pragma: no cover - older Typer on plain click
        from click import exceptions  # type: ignore[no-redef]
    return exceptions


def _walk_commands(command: Any) -> Any:
    yield command
    for sub in getattr(command, "commands", {}).values():
        yield from _walk_commands(sub)


def _hide_flag_types(command: Any) -> None:
    """Give every flag an empty metavar: the rich help shows the metavar in the type column."""
    def plain(param: Any) -> Any:
        if param is not None and getattr(param, "is_flag", False) and not param.metavar:
            param.metavar = ""
        return param

    for cmd in _walk_commands(command):
        for param in cmd.params:
            plain(param)
        # --help is made per context, after this walk: mark it when it is made.
        cmd.get_help_option = functools.partial(lambda made, ctx: plain(made(ctx)), cmd.get_help_option)


def _option_hint(param: Any) -> str:
    longs = [o for o in getattr(param, "opts", ()) if o.startswith("--")]
    return longs[0] if longs else str(getattr(param, "human_readable_name", None) or param.name).upper()


def _received(param: Any, args: list[str], err: BaseException) -> Optional[str]:
    """The text the user gave ``param`` on the command line (the last occurrence wins, as in Click)."""
    value = None
    opts = tuple(getattr(param, "opts", ()))
    for i, arg in enumerate(args):
        if arg in opts and i + 1 < len(args):
            value = args[i + 1]
        for opt in opts:
            if opt.startswith("--") and arg.startswith(opt + "="):
                value = arg[len(opt) + 1 :]
    if value is None:  # an argument, or a value the parser saw elsewhere: Typer's validator keeps it
        cause = err.__cause__
        errors = getattr(cause, "errors", None)
        if callable(errors):
            try:
                first = errors()[0].get("input")
            except (IndexError, TypeError, AttributeError):
                first = None
            value = None if first is None else str(first)
    return value


def _as_typed(text: str) -> str:
    """``'0'`` -> ``0``, ``'1.5'`` -> ``1.5``, ``'abc'`` -> ``'abc'`` (repr of what was received)."""
    for convert in (int, float):
        try:
            return repr(convert(text))
        except ValueError:
            pass
    return repr(text)


def _number_kind(param: Any) -> Optional[str]:
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    name = getattr(annotation, "__name__", None) or getattr(getattr(param, "type", None), "name", "")
    if name in ("int", "integer", "integer range"):
        return "an integer"
    if name in ("float", "float range"):
        return "a number"
    return None


def _expected_number(param: Any, kind: str) -> str:
    """``'an integer >= 1'``, ``'an integer in [1, 40]'``, ``'a number'`` (finite, any sign)."""
    ptype = getattr(param, "type", None)
    lo = getattr(param, "min", getattr(ptype, "min", None))
    hi = getattr(param, "max", getattr(ptype, "max", None))
    if lo is not None and hi is not None:
        return f"{kind} in [{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{kind} >= {lo:g}"
    if hi is not None:
        return f"{kind} <= {hi:g}"
    return kind if kind == "an integer" else "a finite number"


def _usage_error_message(err: Any, args: list[str]) -> str:
    """One line for a Click usage error (see :func:`run_app`)."""
    exceptions = _click_exceptions()
    param = getattr(err, "param", None)
    if isinstance(err, exceptions.BadParameter) and not isinstance(err, exceptions.MissingParameter) and param is not None:
        text = _received(param, args, err)
        kind = _number_kind(param)
        got = "" if text is None else f", got {_as_typed(text) if kind else repr(text)}"
        if kind is not None:
            return str(invalid_value(_option_hint(param), f"expected {_expected_number(param, kind)}{got}"))
        return f"{' '.join(err.format_message().split())}{got}."
    message = " ".join(err.format_message().split())
    ctx = getattr(err, "ctx", None)
    where = f" See '{ctx.command_path} --help'." if ctx is not None else ""
    return f"{message.rstrip('.')}.{where}"

