"""The errors milmer raises for its users, and the one shape of an invalid-value message.

:class:`MilmerInputError` marks a problem with the user's input (bad file, bad option); the
command-line tools turn it into exit code 2 without a traceback. :class:`MilmerExternalError` is a
fault outside milmer (a server went away, the disk is full). The checks that write the messages
live in :mod:`milmer.runtime.check` (values) and :mod:`milmer.runtime.check_paths` (files).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["MilmerInputError", "MilmerExternalError", "invalid_value"]


class MilmerInputError(ValueError):
    """The user's input (a file, an option, a recording) cannot be used as given."""


class MilmerExternalError(RuntimeError):
    """A fault outside milmer stopped the work (a server went away or did not answer in time, the
    disk is full): the message names the cause; the command-line tools exit 1 without calling it a bug."""


def invalid_value(name: str | Sequence[str], body: str, hint: str | None = None) -> MilmerInputError:
    """``Invalid value for 'name': body.`` (``Invalid values for 'a'/'b'`` for several names); a
    ``hint`` (the way forward) follows after a semicolon."""
    tail = f"; {hint.rstrip('. ')}" if hint else ""
    names = "/".join(f"'{n}'" for n in ([name] if isinstance(name, str) else name))
    return MilmerInputError(f"Invalid value{'' if isinstance(name, str) else 's'} for {names}: {body}{tail}.")
