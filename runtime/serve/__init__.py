"""Serving bags with NVIDIA Triton Inference Server (through PyTriton), and its clients.

- :mod:`.protocol`: the served model's name, tensors, shapes and dtypes (one source for both ends)
- :mod:`.server`: ``milmer serve --model DIR``: our runtime (backbone + fusion) bound into Triton
  with its dynamic batcher, so bags from many clients are scored in shared batches
- :mod:`.binding`: the served models, the finite-input check and the drain gate
- :mod:`.request_errors`: one request of a batch refused with its own error (HTTP 400/503)
- :mod:`.supervisor`: restart after a crash, drain on SIGTERM, the stop report
- :mod:`.hygiene`: ports, file modes, workspaces, leftover processes and shared memory
- :mod:`.lockdown`: Triton's control endpoints closed, no token on tritonserver's command line
- :mod:`.client`: :class:`~.client.RemotePipeline`, the local pipeline with scoring on a server
  (``milmer-infer VIDEO EEG --server URL``)
- :mod:`.study`: score a manifest of recordings concurrently against a server

PyTriton (``nvidia-pytriton``) and ``tritonclient`` are imported lazily, only when a server is
started or contacted; nothing here imports torch.
"""
