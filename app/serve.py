"""``milmer serve``: the model on NVIDIA Triton Inference Server (clients send bags, Triton batches them)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .errors import EXIT_INTERNAL, handle_errors, print_error

__all__ = ["serve"]


@handle_errors
def serve(
    model: Path = typer.Option(..., "--model", help="Exported model folder (spec.json, swin.onnx, fusion.onnx)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    http_port: int = typer.Option(
        8000, "--http-port", metavar="PORT", min=1, max=65535, help="Triton HTTP port (clients: --server http://HOST:PORT)."
    ),
    grpc_port: int = typer.Option(8001, "--grpc-port", metavar="PORT", min=1, max=65535, help="Triton gRPC port."),
    metrics_port: int = typer.Option(8002, "--metrics-port", metavar="PORT", min=1, max=65535, help="Prometheus metrics port (/metrics)."),
    max_batch: int = typer.Option(
        8, "--max-batch", metavar="N", min=1, help="Most bags Triton's dynamic batcher puts into one model call."
    ),
    max_queue_delay_us: int = typer.Option(
        2000, "--max-queue-delay-us", metavar="US", min=0, help="Microseconds a request may wait for others to fill a batch."
    ),
    backend: str = typer.Option("auto", "--backend", help="auto, ort (ONNX Runtime) or trt (TensorRT)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or tensorrt (ONNX Runtime EP)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, fp16 or int8."),
) -> None:
    """Serve the model with NVIDIA Triton Inference Server: clients send bags, Triton batches them."""
    from milmer.runtime.serve.server import ServeConfig, serve as run_server

    config = ServeConfig(
        host=host, http_port=http_port, grpc_port=grpc_port, metrics_port=metrics_port,
        max_batch=max_batch, max_queue_delay_us=max_queue_delay_us,
    )

    def ready(urls: dict[str, str]) -> None:
        typer.echo(
            f"Serving {model} as model 'milmer' (models ready; Ctrl-C stops): HTTP {urls['http']}, gRPC {urls['grpc']}, "
            f"metrics {urls['metrics']}; clients: milmer-infer VIDEO EEG --server {urls['http']}",
        )
        sys.stdout.flush()

    report = run_server(model, config, backend=backend, device=device, precision=precision, on_ready=ready)
    if not report.clean:
        print_error(f"Error: the server did not stop cleanly: {'; '.join(report.problems)}.")
        raise typer.Exit(EXIT_INTERNAL)
    crashes = report.restarts
    restarts = f"; restarted {crashes} time{'s' if crashes != 1 else ''} after a crash" if crashes else ""
    typer.echo(f"Server stopped (drained in {report.drain_s:.1f} s, {report.refused} requests refused while stopping{restarts}).")
