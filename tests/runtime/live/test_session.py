"""milmer live end to end on loopback LSL: the demo recording's EEG through a real outlet at real
pace, its video played at its pace; the JSON lines, the LSL outlet and the recording checked."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from milmer.runtime.live.engine import LiveConfig
from milmer.runtime.live.session import LiveRequest, run_live

from .conftest import LOOKAHEAD_S, SECONDS, EEGPlayer, needs_lsl, pylsl, stream_name

pytestmark = needs_lsl


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
    """One recorded live session of the demo recording (JSON lines, outlet, --record).

    The ICA calibration spans the whole stream, so that the replay can be held to the offline
    result exactly (test_faults.py runs the steady state after a short calibration)."""
    root = tmp_path_factory.mktemp("live-session")
    name = stream_name()
    rec = demo_recording
    player = EEGPlayer(name, rec["data"], rec["sfreq"], rec["channels"], rec["types"]).start()
    reader = OutletReader(name + "-out")
    request = LiveRequest(
        model=tiny_model, eeg_stream=name, video=str(rec["video"]),
        config=LiveConfig(calibration_s=SECONDS + LOOKAHEAD_S, lookahead_s=LOOKAHEAD_S, duration_s=SECONDS + 15.0),
        out=root / "live.jsonl", lsl_out=name + "-out", record=root / "rec", view=False,
    )
    summary = run_live(request)
    reader.close()
    player.thread.join(5.0)
    lines = [json.loads(line) for line in (root / "live.jsonl").read_text().splitlines()]
    return {"summary": summary, "lines": lines, "reader": reader, "root": root, "request": request}


def test_every_window_scored_and_lines_parse(session):
    every = [r for r in session["lines"] if r["type"] == "window"]
    windows = every[: SECONDS // 3]
    assert [r["index"] for r in windows] == list(range(SECONDS // 3))
    # After the EEG ends, LSL cannot tell an end from a stall: a window past it is a stall.
    assert all(r["skipped"] == "eeg-stall" for r in every[SECONDS // 3 :])
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
    assert all(r["calibration"] and "calibration" in r["flags"] for r in windows)


def test_outlet_delivers_the_same_probabilities(session):
    windows = [r for r in session["lines"] if r["type"] == "window" and r["status"] == "scored"]
    reader = session["reader"]
    names = list(windows[0]["probabilities"])
    assert reader.labels == names
    assert len(reader.samples) == len(windows)
    for r, sample, stamp in zip(windows, reader.samples, reader.stamps):
        np.testing.assert_allclose(sample, [r["probabilities"][c] for c in names], atol=1e-6)
        assert stamp == pytest.approx(r["end"], abs=1e-6)


def test_recording_replays_offline_to_the_same_windows(session, tiny_model):
    """milmer-infer's pipeline on the --record folder: the same windows, the same frames, and (ICA
    fitted on the same data, 2 s lookahead) the same labels and probabilities."""
    from milmer.runtime.pipeline import Pipeline
    from milmer.runtime.recording import RecordingOptions

    rec = session["request"].record
    alignment = json.loads((rec / "alignment.json").read_text())
    assert sorted(p.name for p in rec.iterdir()) == [
        "alignment.json", "eeg_raw.fif", "eeg_times.npy", "header.json", "video.mkv", "video_times.npy"
    ]
    eeg_times = np.load(rec / "eeg_times.npy")
    assert len(eeg_times) == alignment["eeg"]["n_samples"] == (SECONDS + LOOKAHEAD_S) * 256  # nothing lost
    windows = [r for r in session["lines"] if r["type"] == "window" and r["status"] == "scored"]
    t0 = eeg_times[0]
    with Pipeline(tiny_model, backend="ort", device="cpu") as pipe:
        offline = pipe.predict(rec / "video.mkv", rec / "eeg_raw.fif", options=RecordingOptions(offset_s=alignment["offset_s"]))
    assert [w.start for w in offline.windows] == pytest.approx([r["start"] - t0 for r in windows], abs=1e-3)
    agree = np.mean([w.label == r["label"] for w, r in zip(offline.windows, windows)])
    probs = np.array([[r["probabilities"][c] for c in offline.class_names] for r in windows])
    diff = np.abs(probs - np.array([w.probabilities for w in offline.windows])).max()
    # Frame times on the video's axis: live LSL time - first frame's = offline video time.
    d = np.concatenate([np.abs(np.array(r["frame_times"]) - t0 + alignment["offset_s"] - w.frame_times) for w, r in zip(offline.windows, windows)])
    same = float(np.mean(d < 0.002))
    print(f"replay: label agreement {agree:.3f} over {len(windows)} windows; max |d prob| {diff:.4f}; same frames {same:.3f}")
    # The same frames, but for near-ties (an instant midway between two frames: the MKV's
    # millisecond times can tip the choice to the neighbour frame).
    assert same >= 0.95 and d.max() < 0.06
    assert agree == 1.0
    assert diff < 0.01
