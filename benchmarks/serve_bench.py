"""Benchmark: bags/s and latency of ``milmer serve`` against the number of concurrent clients,
side by side with local scoring in one process (what ``milmer-infer`` does per batch).

Run it from the serve environment (PyTriton needs numpy<2; docs/serving.md)::

    .venv-serve/bin/python -m milmer.benchmarks.serve_bench --model MODEL_DIR --out benchmarks/results

It starts ``milmer serve`` on free loopback ports, then for each client count C runs C threads,
each sending ``--requests`` requests of ``--bags`` bags (random EEG and crops, fixed seed) and
timing each request; it reads Triton's own statistics to report the mean batch the dynamic
batcher formed. The local reference scores the same bags with :meth:`Pipeline.score_bags` in
this process, one call per ``--bags`` bags, and with the runtime's default CPU batch (2 bags).
Scoring only: preprocessing (EEG, face crops) is the same local work in both paths and is left
out. Numbers from a shared machine are noisy; the report says so and records the load average.

After the sweep it measures what a crash costs: one request of 240 KB of ``[`` crashes the
tritonserver that PyTriton 0.7 bundles (its JSON parser recurses), ``milmer serve`` restarts it,
and the outage is the time from that request until a client's request is scored again. Last, the
stop: seconds from SIGINT until ``milmer serve`` exited, with the drain time it printed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .machine import load_average, machine_info


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.asarray(samples_s) * 1000.0
    return {"p50_ms": round(float(np.percentile(ms, 50)), 2), "p95_ms": round(float(np.percentile(ms, 95)), 2)}


def _bags(spec: Any, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    f, s = spec.face.frames_per_window, spec.face.frame_size
    eeg = rng.normal(0.0, 20.0, (n, spec.eeg.n_channels, spec.eeg.window_samples)).astype(np.float32)
    return eeg, rng.integers(0, 256, (n, f, s, s, 3), dtype=np.uint8)


def _local(model: Path, eeg: np.ndarray, crops: np.ndarray, bags: int, threads: int | None) -> dict[str, Any]:
    from milmer.runtime.pipeline import Pipeline

    rows = {}
    with Pipeline(model, backend="ort", device="cpu", intra_op_threads=threads) as pipeline:
        pipeline.score_bags(eeg[:bags], crops[:bags])  # warm-up
        for per_call in sorted({bags, pipeline.batch}):
            latencies = []
            start = time.perf_counter()
            for i in range(0, len(eeg) - per_call + 1, per_call):
                tick = time.perf_counter()
                pipeline.score_bags(eeg[i : i + per_call], crops[i : i + per_call])
                latencies.append(time.perf_counter() - tick)
            wall = time.perf_counter() - start
            rows[f"local, {per_call} bag(s) per call"] = {
                "clients": 1, "bags_per_request": per_call, "bags": len(latencies) * per_call,
                "bags_per_s": round(len(latencies) * per_call / wall, 2), **_percentiles(latencies),
            }  # fmt: skip
    return rows


def _batch_counts(address: str) -> dict[int, int]:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url=address)
    try:
        (model,) = client.get_inference_statistics("milmer")["model_stats"]
    finally:
        client.close()
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in model.get("batch_stats", [])}


def _served(url: str, eeg: np.ndarray, crops: np.ndarray, clients: int, requests: int, bags: int) -> dict[str, Any]:
    from milmer.runtime.serve.client import RemotePipeline

    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def client(c: int) -> None:
        try:
            with RemotePipeline(url, batch=bags) as remote:
                remote.score_bags(eeg[:bags], crops[:bags])  # warm the connection
                barrier.wait()
                for r in range(requests):
                    i = ((c * requests + r) * bags) % (len(eeg) - bags + 1)
                    tick = time.perf_counter()
                    remote.score_bags(eeg[i : i + bags], crops[i : i + bags])
                    with lock:
                        latencies.append(time.perf_counter() - tick)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)
            barrier.abort()

    address = url.removeprefix("http://")
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    before = _batch_counts(address)
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    after = _batch_counts(address)
    delta = {b: after.get(b, 0) - before.get(b, 0) for b in after}
    executions = sum(delta.values())
    total = clients * requests * bags
    return {
        "clients": clients, "bags_per_request": bags, "bags": total, "bags_per_s": round(total / wall, 2),
        **_percentiles(latencies), "mean_batch": round(sum(b * n for b, n in delta.items()) / executions, 2) if executions else None,
    }  # fmt: skip


def _crash_outage(url: str, eeg: np.ndarray, crops: np.ndarray, timeout_s: float = 180.0) -> dict[str, Any]:
    """Send the crashing request, then retry one scoring request until it succeeds: the outage (s)."""
    import http.client
    import urllib.error
    import urllib.request

    from milmer.runtime.check import MilmerInputError
    from milmer.runtime.serve.client import RemotePipeline, ServerConnectionError

    tick = time.perf_counter()
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/v2/models/milmer/infer", data=b"[" * 240_000), timeout=30)
    except urllib.error.HTTPError as err:  # answered with an error: this Triton does not crash
        return {"crashed": False, "answer": f"HTTP {err.code}"}
    except (urllib.error.URLError, ConnectionError, http.client.HTTPException):
        pass
    while time.perf_counter() - tick < timeout_s:
        try:
            with RemotePipeline(url, timeout_s=timeout_s) as remote:
                remote.score_bags(eeg[:1], crops[:1])
            return {"crashed": True, "outage_s": round(time.perf_counter() - tick, 2)}
        except (MilmerInputError, ServerConnectionError):
            time.sleep(0.05)
    return {"crashed": True, "outage_s": None}


def _markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Serving benchmark (Triton via PyTriton) vs local scoring",
        "",
        f"Model: `{report['model']}`; {report['settings']}.",
        f"Machine: {report['machine'].get('cpu_model', '?')}, {report['machine'].get('usable_cores', '?')} usable cores; load average "
        f"{report['load_before']} before, {report['load_after']} after. **The CPU is shared with other engineers' "
        "work: numbers are noisy; compare rows of one run, not runs.**",
        "Scoring only (preprocessing is the same local work in both paths). Latency is per request (server) or per call (local).",
        "",
        "| path | clients | bags/request | bags/s | p50 ms | p95 ms | mean Triton batch |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in report["rows"].items():
        lines.append(
            f"| {name} | {row['clients']} | {row['bags_per_request']} | {row['bags_per_s']} | {row['p50_ms']} | "
            f"{row['p95_ms']} | {row.get('mean_batch', '')} |"
        )
    crash, stop = report.get("crash", {}), report.get("stop", {})
    if crash:
        outcome = (
            f"the server crashed and was restarted; outage until a request was scored again: **{crash['outage_s']} s**"
            if crash.get("crashed") else f"the server answered it ({crash.get('answer')}) and did not crash"
        )
        lines += ["", f"Crash: one request of 240 KB of `[` to `/v2/models/milmer/infer`: {outcome}."]
    if stop:
        lines.append(f"Stop: SIGINT to exit {stop['stop_s']} s (exit code {stop['exit_code']}; {stop['line']}).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="exported model folder")
    parser.add_argument("--out", type=Path, default=None, help="folder for serve-<cpu>.json/.md (default: print only)")
    parser.add_argument("--clients", default="1,2,4,8", help="client counts to sweep")
    parser.add_argument("--requests", type=int, default=8, help="requests per client")
    parser.add_argument("--bags", type=int, default=1, help="bags per request")
    parser.add_argument("--max-batch", type=int, default=8, help="server --max-batch")
    parser.add_argument("--max-queue-delay-us", type=int, default=2000, help="server --max-queue-delay-us")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (local and server)")
    args = parser.parse_args(argv)
    from milmer.runtime.model_dir import load_model_dir

    spec = load_model_dir(args.model).spec
    clients = [int(c) for c in args.clients.split(",")]
    eeg, crops = _bags(spec, max(clients) * args.requests * args.bags)
    load_before = load_average()
    rows = _local(args.model, eeg, crops, args.bags, args.threads)
    http, grpc, metrics = _free_ports(3)
    cmd = [sys.executable, "-m", "milmer.app.cli", "serve", "--model", str(args.model), "--http-port", str(http),
           "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--max-batch", str(args.max_batch),
           "--max-queue-delay-us", str(args.max_queue_delay_us)]  # fmt: skip
    env = dict(os.environ)
    if args.threads is not None:
        env["OMP_NUM_THREADS"] = str(args.threads)
    log = open(os.devnull, "w")
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        assert server.stdout is not None
        for line in server.stdout:  # the ready line
            if "Serving" in line:
                break
        else:
            raise RuntimeError(f"milmer serve exited with {server.wait()}")
        tail: list[str] = []
        threading.Thread(target=lambda: tail.extend(server.stdout), daemon=True).start()  # keep the pipe drained
        url = f"http://127.0.0.1:{http}"
        for c in clients:
            rows[f"server, {c} client(s)"] = _served(url, eeg, crops, c, args.requests, args.bags)
            print(f"{c} client(s): {rows[f'server, {c} client(s)']}", flush=True)
        crash = _crash_outage(url, eeg, crops)
        print(f"crash: {crash}", flush=True)
    finally:
        tick = time.perf_counter()
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=90)
        stop = {"stop_s": round(time.perf_counter() - tick, 2), "exit_code": code, "line": "see the server's output"}
        log.close()
    info = machine_info()
    report = {
        "model": str(args.model),
        "settings": f"server --max-batch {args.max_batch} --max-queue-delay-us {args.max_queue_delay_us}; "
        f"{args.requests} requests per client of {args.bags} bag(s); ORT threads {args.threads or 'default'}",
        "machine": info,
        "load_before": load_before,
        "load_after": load_average(),
        "rows": rows,
        "crash": crash,
        "stop": {**stop, "line": next((line.strip() for line in tail if line.startswith("Server stopped")), "no stop line")},
    }
    text = _markdown(report)
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        name = f"cpu-{info.get('cpu_short_name', 'unknown')}-serve"
        (args.out / f"{name}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
        (args.out / f"{name}.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
