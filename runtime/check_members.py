"""Checks that values belong to a set found at run time (the channels of a recording, the
subjects of a data set) and that none repeats, in the message shape of :mod:`milmer.runtime.check`;
re-exported there. (One value among fixed or found options: :func:`~.check.check_option`.)"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import invalid_value as _error

__all__ = ["check_subset", "check_unique"]


def check_subset(
    name: str, values: Iterable[Any], allowed: Iterable[Any], *, among: str, what: str = "values", hint: str | None = None
) -> tuple[Any, ...]:
    """Return ``values`` as a tuple if each is one of ``allowed`` (``among`` says where those come
    from), else raise naming every one that is not (``what``: the kind of value):
    ``... for '--channel-map': expected names among the recording's channels ('Fp1',
    'Fp2'), got 'XX', 'YY', which are not.``"""
    values, allowed = tuple(values), tuple(allowed)
    outside = [v for v in values if v not in allowed]
    if outside:
        listed = ", ".join(repr(a) for a in allowed) or "none"
        which = "which is" if len(outside) == 1 else "which are"
        raise _error(name, f"expected {what} among {among} ({listed}), got {', '.join(map(repr, outside))}, {which} not", hint)
    return values


def check_unique(
    name: str | Sequence[str], values: Iterable[Any], what: str, *, hint: str | None = None
) -> tuple[Any, ...]:
    """Return ``values`` as a tuple if none repeats, else raise naming each repeat:
    ``... for 'records': expected each trial once, got 's01/3' twice.`` (``3 times``; several
    names: ``... values for '--http-port'/'--grpc-port': expected each port once, ...``)."""
    values = tuple(values)
    counts: dict[Any, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    repeats = [f"{v!r} {'twice' if n == 2 else f'{n} times'}" for v, n in counts.items() if n > 1]
    if repeats:
        raise _error(name, f"expected each {what} once, got {', '.join(repeats)}", hint)
    return values
