"""Synthetic EEG for the EEG tests: 1/f background, blinks with a known waveform and topography."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from milmer.runtime.spec import DEAP_CHANNELS, EEGSpec, ICASpec

SFREQ = 128.0
BLINK_UV = 300.0

# Share of the Fp1/Fp2 blink amplitude seen at each electrode row: eye artefacts fall off from
# the forehead to the back of the head.
_ROW_WEIGHT = {"Fp": 1.0, "AF": 0.6, "F": 0.35, "FC": 0.15, "C": 0.07, "T": 0.07, "CP": 0.04,
               "P": 0.02, "PO": 0.01, "O": 0.01}  # fmt: skip


def blink_weight(channel: str) -> float:
    row = "".join(ch for ch in channel if ch.isalpha()).removesuffix("z")
    return _ROW_WEIGHT[row]


@dataclass
class SyntheticEEG:
    """brain: (32, T) volts; blink: (T,) volts at Fp1; eeg = brain + outer(weights, blink)."""

    brain: np.ndarray
    blink: np.ndarray
    weights: np.ndarray
    eog: np.ndarray  # (T,) volts: the blinks as a vertical EOG channel sees them, plus noise
    onsets: np.ndarray  # (B,) sample index of each blink

    @property
    def eeg(self) -> np.ndarray:
        return self.brain + np.outer(self.weights, self.blink)


def make_eeg(seed: int, duration_s: float = 60.0, *, blinks: bool = True) -> SyntheticEEG:
    """32 channels of 1/f ("pink") noise mixed by a random matrix, ~20 uV per channel, and
    blinks of 300 uV, 200-400 ms long (Hann bumps), every 4 +- 0.8 s."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * SFREQ)
    white = rng.standard_normal((32, n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    sources = np.fft.irfft(np.fft.rfft(white, axis=1) / np.sqrt(freqs), n=n, axis=1)  # 1/f power
    brain = rng.standard_normal((32, 32)) @ (sources / sources.std(axis=1, keepdims=True))
    brain *= 20e-6 / brain.std(axis=1, keepdims=True)

    blink = np.zeros(n)
    onsets = []
    t = 1.5
    while t < duration_s - 1:
        length = int(rng.uniform(0.2, 0.4) * SFREQ)
        start = int(t * SFREQ)
        blink[start : start + length] += BLINK_UV * 1e-6 * np.hanning(length)
        onsets.append(start)
        t += 4 + rng.uniform(-0.8, 0.8)
    eog_noise = 5e-6 * rng.standard_normal(n)
    if not blinks:
        blink[:] = 0
    weights = np.array([blink_weight(c) for c in DEAP_CHANNELS])
    return SyntheticEEG(brain, blink, weights, 1.5 * blink + eog_noise, np.array(onsets))


@pytest.fixture(scope="session")
def eeg_spec() -> EEGSpec:
    return EEGSpec()


@pytest.fixture(scope="session")
def no_ica_spec() -> EEGSpec:
    return dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False))


@pytest.fixture(scope="session")
def blinky() -> SyntheticEEG:
    return make_eeg(seed=0)


@pytest.fixture(scope="session")
def blink_free() -> SyntheticEEG:
    return make_eeg(seed=0, blinks=False)


@pytest.fixture(scope="session")
def synth():
    """The generator itself, for tests that need their own seed or length."""
    return make_eeg


@pytest.fixture(scope="session")
def filter_only_spec() -> EEGSpec:
    """Channel picking, resampling, band-pass and windows only: no reference, notch or ICA."""
    return dataclasses.replace(EEGSpec(), ica=ICASpec(enabled=False), reference="as-recorded", line_noise="off")


# ---------------------------------------------------------------- small recording files
def brain(seconds: float, seed: int = 0, n: int = 32) -> np.ndarray:
    """(n, T) volts at 128 Hz: uniform sources randomly mixed, ~20 uV per channel (non-Gaussian:
    FastICA converges fast)."""
    rng = np.random.default_rng(seed)
    sources = rng.uniform(-1.0, 1.0, (n, int(seconds * SFREQ)))
    mixed = rng.standard_normal((n, n)) @ sources
    return 20e-6 * mixed / mixed.std(axis=1, keepdims=True)


def write_edf_plus(path, data, ch_names, sfreq, record_onsets, *, units=None, record_s=1.0):
    """An EDF+ file written byte by byte: data (C, T) in the numbers to store, ``units`` the
    unit fields (default 'uV'), record k at ``record_onsets[k]`` s (EDF+D when not contiguous:
    pyedflib and MNE's export write EDF+C only)."""
    data = np.asarray(data, float)
    c, t = data.shape
    spr = int(round(sfreq * record_s))
    n_rec = t // spr
    assert len(record_onsets) == n_rec
    contiguous = np.allclose(np.diff(record_onsets), record_s)
    units = ["uV"] * c if units is None else units
    ann_bytes, ns = 60, c + 1

    def f(s, n):
        s = str(s)
        assert len(s) <= n, (s, n)
        return s.ljust(n).encode("ascii")

    def text(v):  # the EDF field holds 8 characters
        return next(t for t in (f"{v:.3g}", f"{v:.2g}", f"{v:.1g}") if len(t) <= 8)

    def num(v):
        return float(text(v))

    pmin = np.array([num(v) for v in data.min(axis=1) - np.abs(data.min(axis=1)) * 0.1 - 1e-9])
    pmax = np.array([num(v) for v in data.max(axis=1) + np.abs(data.max(axis=1)) * 0.1 + 1e-9])
    labels = list(ch_names) + ["EDF Annotations"]
    hdr = f("0", 8) + f("X X X X", 80) + f("Startdate 01-JAN-2020 X X X", 80) + f("01.01.20", 8) + f("00.00.00", 8)
    hdr += f(256 * (ns + 1), 8) + f("EDF+C" if contiguous else "EDF+D", 44) + f(n_rec, 8) + f(f"{record_s:g}", 8) + f(ns, 4)
    hdr += b"".join(f(lab, 16) for lab in labels) + b"".join(f("", 80) for _ in labels)
    hdr += b"".join(f(u, 8) for u in units) + f("", 8)
    hdr += b"".join(f(text(v), 8) for v in pmin) + f("-1", 8)
    hdr += b"".join(f(text(v), 8) for v in pmax) + f("1", 8)
    hdr += b"".join(f("-32768", 8) for _ in range(c)) + f("-32768", 8)
    hdr += b"".join(f("32767", 8) for _ in range(c)) + f("32767", 8)
    hdr += b"".join(f("", 80) for _ in labels)
    hdr += b"".join(f(spr, 8) for _ in range(c)) + f(ann_bytes // 2, 8)
    hdr += b"".join(f("", 32) for _ in labels)
    gain = (pmax - pmin) / 65535.0
    digital = np.clip(np.round((data - pmin[:, None]) / gain[:, None] - 32768), -32768, 32767).astype("<i2")
    out = bytearray(hdr)
    for k in range(n_rec):
        for ch in range(c):
            out += digital[ch, k * spr : (k + 1) * spr].tobytes()
        out += f"+{record_onsets[k]:g}\x14\x14\x00".encode().ljust(ann_bytes, b"\x00")
    path.write_bytes(bytes(out))
    return path


def write_brainvision(path, data, ch_names, sfreq, units):
    """A BrainVision triplet (.vhdr/.vmrk/.eeg, float32): data (C, T) the numbers to store,
    ``units`` the unit field of each channel as written (e.g. a Greek mu)."""
    stem = path.with_suffix("")
    (stem.with_suffix(".eeg")).write_bytes(np.asarray(data, "<f4").T.tobytes())
    chans = "".join(f"Ch{i + 1}={n},,1,{u}\n" for i, (n, u) in enumerate(zip(ch_names, units)))
    path.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem.name}.eeg\nMarkerFile={stem.name}.vmrk\nDataFormat=BINARY\n"
        f"DataOrientation=MULTIPLEXED\nNumberOfChannels={len(ch_names)}\nSamplingInterval={1e6 / sfreq:g}\n"
        "[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n[Channel Infos]\n" + chans,
        encoding="utf-8",
    )
    stem.with_suffix(".vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem.name}.eeg\n[Marker Infos]\nMk1=New Segment,,1,1,0\n",
        encoding="utf-8",
    )
    return path


def write_fif(path, data, ch_names, sfreq=SFREQ, *, bads=(), annotations=None, types="eeg"):
    import mne

    raw = mne.io.RawArray(data, mne.create_info(list(ch_names), sfreq, types), verbose="error")
    raw.info["bads"] = list(bads)
    if annotations is not None:
        raw.set_annotations(mne.Annotations(*annotations))
    raw.save(path, overwrite=True, verbose="error")
    return path


@pytest.fixture(scope="session")
def files():
    """The writers above, for tests (conftest functions are not importable by module name)."""
    import sys

    return sys.modules[__name__]
