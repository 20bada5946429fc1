"""milmer.benchmarks: latency, throughput and memory of the pipeline (``milmer bench``)."""
