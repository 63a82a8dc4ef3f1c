"""Model conversion at setup: published networks to verified ONNX files.

- ``mediapipe``: MediaPipe ``.tflite`` -> ONNX (tflite2onnx), the graph
  rewrites for ONNX Runtime's NCHWc layout, a dynamic batch, verification
  against LiteRT. Imports its tool chain only when it runs.
- ``whenet`` (with ``efficientnet``, the exact Keras EfficientNet-B0 in
  torch): WHENet's Keras ``.h5`` -> torch -> ONNX, verified against stored
  Keras outputs. Imports torch at module level.
- ``hopenet``: the Hopenet authors' checkpoints -> ONNX, for ``headpose-ros
  export-hopenet`` (the weights are not downloaded). Imports torch at module level.
- ``common``: what the conversions share (tool imports, verification
  settings and checks, the manifest's provenance).

Nothing here runs at inference time; the engine only loads the ONNX files.
"""
