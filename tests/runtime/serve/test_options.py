"""Checks that need no running server: manifest, server URL, server options, environment (the
commands' server options: tests/app/test_server_options.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.serve.client import parse_server_url
from milmer.runtime.serve.protocol import bag_tensors
from milmer.runtime.serve.server import ServeConfig, check_serve_environment, python_library_dir
from milmer.runtime.serve.study import read_manifest


def test_bag_tensors_follow_the_spec(spec):
    inputs, outputs = bag_tensors(spec)
    assert [(t.name, t.shape, t.triton_dtype) for t in inputs] == [
        ("eeg", (32, 384), "FP32"),
        ("frames", (10, 224, 224, 3), "UINT8"),
    ]
    assert [(t.name, t.shape, t.triton_dtype) for t in outputs] == [
        ("logits", (4,), "FP32"),
        ("probabilities", (4,), "FP32"),
        ("mil_weights", (10,), "FP32"),
        ("selected", (3,), "INT64"),
    ]


@pytest.mark.parametrize(
    ("url", "address"),
    [("http://127.0.0.1:8000", "127.0.0.1:8000"), ("localhost:9000", "localhost:9000"), ("http://[::1]:8000/", "[::1]:8000")],
)
def test_server_url(url, address):
    assert parse_server_url(url) == address


@pytest.mark.parametrize("url", ["grpc://127.0.0.1:8001", "http://127.0.0.1", "http://host:port", "http://h:8000/v2", ""])
def test_bad_server_url_names_the_option(url):
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--server': expected http://HOST:PORT .*got"):
        parse_server_url(url)


def test_serve_config_checks_ports_and_batcher():
    assert ServeConfig().urls() == {
        "http": "http://127.0.0.1:8000",
        "grpc": "grpc://127.0.0.1:8001",
        "metrics": "http://127.0.0.1:8002/metrics",
    }
    with pytest.raises(MilmerInputError, match=r"^Invalid values for '--http-port'/'--grpc-port'/'--metrics-port': expected each port once, got 8000 twice\.$"):
        ServeConfig(grpc_port=8000)
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--http-port': expected an integer in \[1, 65535\], got 70000; a TCP port"):
        ServeConfig(http_port=70000)
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--max-batch': expected an integer >= 1, got 0"):
        ServeConfig(max_batch=0)
    with pytest.raises(MilmerInputError, match=r"Invalid value for '--max-queue-delay-us': expected an integer >= 0, got -1"):
        ServeConfig(max_queue_delay_us=-1)


def test_serve_environment_check(monkeypatch):
    """Refuses exactly the environments where PyTriton would fail or corrupt tensors."""
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/x")
    try:
        import pytriton  # noqa: F401
    except ImportError:
        with pytest.raises(MilmerInputError, match=r"needs NVIDIA PyTriton \(nvidia-pytriton\), not installed here"):
            check_serve_environment()
        return
    if int(np.__version__.split(".")[0]) >= 2:
        with pytest.raises(MilmerInputError, match=rf"needs numpy<2, got numpy {np.__version__}: .*corrupt every tensor"):
            check_serve_environment()
        return
    check_serve_environment()
    assert os.environ["LD_LIBRARY_PATH"] == f"{python_library_dir()}{os.pathsep}/opt/x"


def test_manifest(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("id,video,eeg,offset\na1,v/a.mp4,e/a.edf,1.5\nb_2,/abs/b.mp4,/abs/b.edf,\n")
    entries = read_manifest(path)
    assert [(e.id, e.video, e.eeg, e.offset_s, e.baseline_s) for e in entries] == [
        ("a1", tmp_path / "v/a.mp4", tmp_path / "e/a.edf", 1.5, 0.0),
        ("b_2", Path("/abs/b.mp4"), Path("/abs/b.edf"), 0.0, 0.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("video,eeg\nv.mp4,e.edf\n", r"expected columns id, video, eeg \(and optionally offset, baseline\), got \['video', 'eeg'\]"),
        ("id,video,eeg,fps\n", r"got \['id', 'video', 'eeg', 'fps'\]"),
        ("id,video,eeg\n", r"no recordings listed"),
        ("id,video,eeg\na b,v,e\n", r"row 2, column 'id': expected a letter or digit first, then letters, digits, '\.', '_' or '-' .*got 'a b'"),
        ("id,video,eeg\n_failures,v,e\n", r"row 2, column 'id': expected a letter or digit first, .*got '_failures'"),
        ("id,video,eeg\na,v,e\na,v,e\n", r"row 3, column 'id': 'a' appears twice"),
        ("id,video,eeg\na,,e\n", r"row 2, column 'video' is empty"),
        ("id,video,eeg,offset\na,v,e,soon\n", r"row 2, column 'offset': expected a number of seconds, got 'soon'"),
    ],
)
def test_bad_manifest_names_row_and_column(tmp_path, text, message):
    path = tmp_path / "m.csv"
    path.write_text(text)
    with pytest.raises(MilmerInputError, match=message):
        read_manifest(path)
