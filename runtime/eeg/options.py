"""How to bring a user's recording to the spec: :class:`EEGInputOptions` (the CLI's EEG options)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..check import check_int, check_option
from .units import EEG_UNITS

__all__ = ["MAX_INTERPOLATED", "EEGInputOptions", "min_real_channels"]

#: Default limit on interpolated channels (a quarter of DEAP's 32).
MAX_INTERPOLATED = 8


def min_real_channels(n_channels: int) -> int:
    """Fewest of the model's ``n_channels`` sites a recording must really have (24 of 32).

    Three quarters: past a quarter made up from neighbours the input is no longer the model's,
    so this holds whatever ``--max-interpolated`` says (a 14-channel headset is refused).
    """
    return n_channels - n_channels // 4


@dataclass(frozen=True)
class EEGInputOptions:
    """How to bring a user's recording to the spec (the CLI's EEG options).

    eeg_unit:            the unit the file's numbers are in, overriding its unit field
                         (``--eeg-unit``: 'V', 'mV', 'uV', 'nV'); None trusts the file
    channel_map:         ``--channel-map``: a preset (``biosemi32``), ``'old=new,...'``, a file, or a dict
    interpolate_missing: interpolate missing, bad-marked and unusable channels (``--interpolate-missing``)
    max_interpolated:    refuse when more channels than this would be interpolated; a recording
                         with fewer than :func:`min_real_channels` real sites is refused whatever it is
    """

    eeg_unit: str | None = None
    channel_map: str | Mapping[str, str] | None = None
    interpolate_missing: bool = False
    max_interpolated: int = MAX_INTERPOLATED

    def __post_init__(self) -> None:
        if self.eeg_unit is not None:
            check_option("--eeg-unit", self.eeg_unit, tuple(EEG_UNITS))
        check_int("--max-interpolated", self.max_interpolated, low=0)
