"""Inference: loading a model, the one inference path (Predictor), collections, streams and timelines, result files, export and ONNX, Ray Data."""
