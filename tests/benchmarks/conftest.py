"""One tiny benchmark run shared by the command tests (it builds and exports a model: ~30 s)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="session")
def tiny_bench(tmp_path_factory):
    """``bench_command`` on the tiny model: fp32 + int8, one 6 s recording, minimal repeats."""
    pytest.importorskip("torch")
    from milmer.benchmarks.command import bench_command

    out = tmp_path_factory.mktemp("bench")
    with pytest.MonkeyPatch.context() as patch:
        # The default settings' first-use bf16 check is cached under MILMER_HOME: not the user's.
        patch.setenv("MILMER_HOME", str(tmp_path_factory.mktemp("home")))
        path = bench_command(
            None,
            out,
            quick=True,
            tiny=True,
            precisions=("fp32", "int8"),
            batch_sizes=(1, 2),
            lengths_s=(6,),
            repeats=2,
            warmup=0,
            reference_windows=1,
            peer_compile_timeout_s=1.0,  # torch.compile cannot finish: its skip is what gets tested
            progress=False,
        )
    return out, path, json.loads(path.read_text())
