"""Live EEG preprocessing: the offline steps (:func:`~..eeg.preprocess.preprocess_raw`) on a rolling
buffer, with ICA fitted once on a calibration period and then applied.

Offline, one call of ``preprocess_raw`` does channels, units, reference, notch, resampling,
band-pass, ICA and windowing on the whole recording. Live, the same function runs twice:

- **calibration** (once, on the first ``calibration_s`` seconds): with ICA as the spec says and
  with ICA off. ICA's cleaning is a fixed linear map of the channels (unmix, zero the eye
  components, mix back), so the map is recovered exactly from the two outputs by least squares
  (``(C+1, C)``: channels plus the mean MNE removes before ICA) and kept (:class:`ICAMap`), with
  the line frequency the calibration found (a stream carries no ``line_freq``);
- **each window**: ``preprocess_raw`` with ICA off on the window plus up to ``context_s`` seconds of
  the stream before it (so the filters have run in before the window starts), then the ICA map.

Where this differs from offline (docs/live.md): without ``lookahead_s`` the window's end is the
buffer's end, so its last second is filtered with MNE's edge padding instead of the samples that
follow (offline has them); with ``lookahead_s`` >= 2 s (the 1 Hz high-pass reaches 1.65 s) the
filtered window equals the offline one, at that much more latency;
ICA is fitted on the calibration period, not on the whole recording; the average reference, notch,
resampling and band-pass are the same functions with the same settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..check import MilmerInputError, check_compare
from ..eeg.preprocess import EEGInputOptions, array_to_raw, preprocess_raw
from ..spec import EEGSpec

__all__ = ["ICAMap", "LiveEEG"]


@dataclass(frozen=True)
class ICAMap:
    """ICA's cleaning as an affine map of the spec's channels, from the calibration.

    matrix: (C + 1, C) float64: ``clean (T, C) = [x (T, C), 1] @ matrix`` (microvolts)
    residual_uv: RMS difference between the map and ICA on the calibration data (uV)
    info: the calibration's ``EEGWindows.info`` (``ica_excluded``, ``eog_source``, ``line_noise``, ...)
    """

    matrix: np.ndarray
    residual_uv: float
    info: dict[str, Any]

    def apply(self, window: np.ndarray) -> np.ndarray:
        """window (C, T) float32 uV -> (C, T) float32 uV."""
        x = window.astype(np.float64).T  # (T, C)
        return (x @ self.matrix[:-1] + self.matrix[-1]).T.astype(np.float32)


class LiveEEG:
    """The spec's EEG windows from raw stream samples.

    channels, types: the stream's labels and channel types (from its LSL description)
    sfreq:           the stream's rate (Hz)
    options:         channel map, unit, interpolation, as for offline files
    """

    def __init__(
        self,
        spec_eeg: EEGSpec,
        channels: Sequence[str],
        types: Sequence[str],
        sfreq: float,
        *,
        options: EEGInputOptions | None = None,
    ) -> None:
        self.spec = spec_eeg
        self.channels, self.types, self.sfreq = list(channels), list(types), float(sfreq)
        self.options = options or EEGInputOptions()
        self.ica: ICAMap | None = None
        self._spec_no_ica = dataclasses.replace(spec_eeg, ica=dataclasses.replace(spec_eeg.ica, enabled=False))

    @property
    def window_n(self) -> int:
        """Stream samples per window."""
        return int(round(self.spec.window_s * self.sfreq))

    def _raw(self, data: np.ndarray) -> Any:
        return array_to_raw(data, self.channels, self.sfreq, ch_types=self.types, unit="V")

    def calibrate(self, data: np.ndarray) -> ICAMap:
        """Fit ICA on ``data`` (C, T) volts, the first seconds of the stream; keep the map.

        Raises :class:`MilmerInputError` (the offline checks: channels, units, amplitude) when the
        stream cannot feed the model.
        """
        check_compare(
            "--calibration", data.shape[1], ">=", f"the samples of one window ({self.spec.window_s:g} s)", self.window_n,
            hint=f"{data.shape[1] / self.sfreq:.2f} s of EEG came; ICA is fitted on at least one window",
        )
        raw = self._raw(data)
        with_ica = preprocess_raw(raw, self.spec, options=self.options)
        line = with_ica.info["line_noise"]["freq"]
        # The live windows notch the frequency the calibration found (or nothing).
        fixed = {50.0: "50", 60.0: "60"}.get(line or 0.0, "off")
        self._spec_no_ica = dataclasses.replace(self._spec_no_ica, line_noise=fixed)
        spec_no_ica_same = dataclasses.replace(self._spec_no_ica, line_noise=self.spec.line_noise)
        without = preprocess_raw(raw, spec_no_ica_same, options=self.options)
        x = np.concatenate(list(without.data), axis=1).T.astype(np.float64)  # (T, C) uV
        y = np.concatenate(list(with_ica.data), axis=1).T.astype(np.float64)  # (T, C)
        design = np.hstack([x, np.ones((len(x), 1))])  # (T, C + 1)
        matrix, *_ = np.linalg.lstsq(design, y, rcond=None)  # (C + 1, C)
        residual = float(np.sqrt(np.mean((design @ matrix - y) ** 2)))
        self.ica = ICAMap(matrix=matrix, residual_uv=residual, info=dict(with_ica.info))
        return self.ica

    def window(self, data: np.ndarray, context_n: int) -> tuple[np.ndarray, tuple[str, ...]]:
        """One model window from ``data`` (C, context_n + window_n + lookahead) volts: the
        ``window_n`` samples after the first ``context_n``, filtered with the samples around them
        (any after the window: ``--lookahead``).

        Returns ((n_channels, window_samples) float32 uV, the window's flags). Needs
        :meth:`calibrate` first.
        """
        assert self.ica is not None, "calibrate() first"
        out = preprocess_raw(
            self._raw(data), self._spec_no_ica, baseline_s=context_n / self.sfreq, options=self.options
        )
        assert len(out.data) >= 1, (data.shape, context_n)
        return self.ica.apply(out.data[0]), tuple(out.flags[0]) if out.flags else ()
