"""milmer live end to end on loopback LSL: the demo recording's EEG through a real outlet at real
pace, its video played at its pace; the JSON lines, the LSL outlet and the recording checked."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from milmer.runtime.live.engine import LiveConfig
from milmer.runtime.live.session import LiveRequest, run_live

from .conftest import CALIBRATION_S, SECONDS, EEGPlayer, pylsl, stream_name


class OutletReader:
    """Collects every sample of the LSL stream ``name`` (probabilities) until stopped."""

    def __init__(self, name: str) -> None:
        self.name, self.samples, self.stamps = name, [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.labels: list[str] = []
        self.thread.start()

    def _run(self) -> None:
        found = pylsl.resolve_byprop("name", self.name, 1, 60.0)
        inlet = pylsl.StreamInlet(found[0])
        info = inlet.info(5.0)
        ch = info.desc().child("channels").child("channel")
        while not ch.empty():
            self.labels.append(ch.child_value("label"))
            ch = ch.next_sibling()
        while not self.stop.is_set():
            sample, stamp = inlet.pull_sample(timeout=0.2)
            if sample is not None:
                self.samples.append(sample)
                self.stamps.append(stamp)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5.0)


@pytest.fixture(scope="module")
def session(tiny_model, demo_recording, tmp_path_factory):
    """One recorded live session of the demo recording (JSON lines, outlet, --record)."""
    root = tmp_path_factory.mktemp("live-session")
    name = stream_name()
    rec = demo_recording
    player = EEGPlayer(name, rec["data"], rec["sfreq"], rec["channels"], rec["types"]).start()
    reader = OutletReader(name + "-out")
    request = LiveRequest(
        model=tiny_model, eeg_stream=name, video=str(rec["video"]),
        config=LiveConfig(calibration_s=CALIBRATION_S, duration_s=SECONDS + 15.0),
        out=root / "live.jsonl", lsl_out=name + "-out", record=root / "rec", view=False,
    )
    summary = run_live(request)
    reader.close()
    player.thread.join(5.0)
    lines = [json.loads(line) for line in (root / "live.jsonl").read_text().splitlines()]
    return {"summary": summary, "lines": lines, "reader": reader, "root": root, "request": request}


def test_every_window_scored_and_lines_parse(session):
    windows = [r for r in session["lines"] if r["type"] == "window"]
    assert [r["index"] for r in windows] == list(range(SECONDS // 3))
    assert all(r["status"] == "scored" for r in windows), [(r["index"], r["status"], r["skipped"]) for r in windows]
    starts = np.array([r["start"] for r in windows])
    np.testing.assert_allclose(np.diff(starts), 3.0, atol=1e-6)
    for r in windows:
        assert r["end"] == pytest.approx(r["start"] + 3.0, abs=1e-6)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
        assert all(r["start"] <= t < r["end"] for t in r["selected_frame_times"])
        assert r["latency_s"] > 0
    assert session["lines"][-1]["type"] == "summary"
    assert session["lines"][-1]["scored"] == SECONDS // 3


def test_outlet_delivers_the_same_probabilities(session):
    windows = [r for r in session["lines"] if r["type"] == "window"]
    reader = session["reader"]
    names = list(windows[0]["probabilities"])
    assert reader.labels == names
    assert len(reader.samples) == len(windows)
    for r, sample, stamp in zip(windows, reader.samples, reader.stamps):
        np.testing.assert_allclose(sample, [r["probabilities"][c] for c in names], atol=1e-6)
        assert stamp == pytest.approx(r["end"], abs=1e-6)
