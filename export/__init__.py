"""milmer.export: checkpoint -> swin.onnx + fusion.onnx (+ TensorRT engines)."""
