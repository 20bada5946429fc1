"""One way to turn a frozen config dataclass into JSON and back, with validation of the keys.

The spec, the model and training configs and the TensorRT engine metadata all hold primitives
(numbers, strings, tuples, dicts, nested dataclasses), are written as JSON and read back field
by field, never with ``eval``/pickle. :class:`JsonDataclass` gives each of them the same
``to_dict``/``to_json``/``from_dict``/``from_json``/``save``/``load``; the dataclass's own
``__post_init__`` validates the values. Errors are :class:`MilmerInputError` naming the document
(``what``), the keys and what was received.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .files import read_json_file, write_text_atomic
from .check import MilmerInputError, check_keys

__all__ = ["JsonDataclass", "to_plain"]

T = TypeVar("T", bound="JsonDataclass")


def to_plain(obj: Any) -> Any:
    """``obj`` as JSON values: dataclasses -> dicts (field order), tuples -> lists, dict keys -> str,
    recursively; anything else as it is."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    return obj


class JsonDataclass:
    """Mixin for frozen dataclasses stored as JSON.

    Class settings (all optional):

    - ``_json_what``: the document's name in messages (``'model spec'``);
    - ``_json_required``: keys that must be present (``None``: every field; missing optional
      keys take the field's default);
    - ``_json_nested``: field -> dataclass type of a nested section (built recursively, its keys
      reported with a ``'section.'`` prefix);
    - ``_json_legacy``: values for keys that documents written before those fields existed lack
      (what those documents meant);
    - ``_json_tuples``: lists become tuples at the top level (default True: JSON has no tuples).
    """

    _json_what: ClassVar[str] = "config"
    _json_required: ClassVar[tuple[str, ...] | None] = None
    _json_nested: ClassVar[dict[str, type]] = {}
    _json_legacy: ClassVar[dict[str, Any]] = {}
    _json_tuples: ClassVar[bool] = True

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON values (:func:`to_plain`)."""
        return to_plain(self)  # type: ignore[no-any-return]

    def to_json(self, *, indent: int | None = 2) -> str:
        """Canonical JSON: sorted keys (so equal configs give equal text and hashes)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls: type[T], data: Any, *, prefix: str = "") -> T:
        """Build from :meth:`to_dict` output; unknown keys and missing required keys are errors."""
        where = f" {prefix.rstrip('.')!r}" if prefix else ""
        if not isinstance(data, Mapping):
            raise MilmerInputError(
                f"Invalid {cls._json_what}:{where or ''} expected a JSON object, got {type(data).__name__}."
            )
        data = {**cls._json_legacy, **data}
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        check_keys(cls._json_what, data, names, required=cls._json_required, prefix=prefix)
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            sub = cls._json_nested.get(name)
            if sub is not None:
                if not isinstance(value, Mapping):
                    raise MilmerInputError(
                        f"Invalid {cls._json_what}: {prefix + name!r} must be an object, got {type(value).__name__}."
                    )
                kwargs[name] = sub.from_dict(value, prefix=f"{prefix}{name}.")  # type: ignore[attr-defined]
            elif cls._json_tuples and isinstance(value, list):
                kwargs[name] = tuple(value)
            else:
                kwargs[name] = value
        try:
            return cls(**kwargs)
        except TypeError as err:
            raise MilmerInputError(f"Invalid {cls._json_what} at {prefix.rstrip('.') or 'top level'}: {err}.") from None

    @classmethod
    def from_json(cls: type[T], text: str) -> T:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise MilmerInputError(f"Invalid {cls._json_what}: not valid JSON ({err}).") from None
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` (and a newline) atomically."""
        return write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls: type[T], path: str | os.PathLike[str], *, param: str = "config") -> T:
        """Read a file written by :meth:`save`; ``param`` names the option in a missing-file message."""
        return cls.from_dict(read_json_file(path, param=param, what=cls._json_what))
