"""milmer.benchmarks: latency, throughput and memory of the pipeline (``milmer bench``).

Entry point: :func:`milmer.benchmarks.command.bench_command`. The benchmark measures the
runtime (numpy, OpenCV, MNE, ONNX Runtime) and imports torch in two places only:
:mod:`.model`, when it builds the default benchmark model, and :mod:`.reference`, the
official-style PyTorch reference, which runs in its own process.
"""
