"""The ROS-free engine and its stages, wired to the prepared model files (headpose_ros.assets).

`core` knows how to run networks but not where their files are; `assets`
knows where the files are but not how to run them. This module joins the two
for everything that runs the engine: the node, the CLI, evaluation, the
bench and the tests.
"""

from __future__ import annotations

from typing import Callable

from . import assets
from .core.config import EngineConfig
from .core.detection import FaceDetector
from .core.engine import HeadPoseEngine
from .core.inference import OnnxRuntime
from .core.landmarks import FaceMesh
from .core.models import DETECTORS, FACE_MESH


def create_engine(config: EngineConfig = EngineConfig(), *, model_dir: str = "", unchecked_models: bool = False,
                  log: Callable[[str], None] = print) -> HeadPoseEngine:
    """A HeadPoseEngine on the prepared models, or on the .onnx files in `model_dir` (checked against their
    manifests unless `unchecked_models`)."""
    return HeadPoseEngine(config, assets.ModelStore(model_dir, unchecked_models), log=log)


def face_stages(detector: str = "full_range", threads: int = 2) -> tuple[FaceDetector, FaceMesh]:
    """The face detector and the face mesh on ONNX Runtime, with their default settings.

    For tools that need faces and landmarks without poses (synth, the face
    model's derivation, the bench's baselines, tests).
    """
    store = assets.ModelStore()
    model = DETECTORS[detector]
    return (FaceDetector(model, OnnxRuntime(store.onnx(model.asset), threads=threads)),
            FaceMesh(FACE_MESH, OnnxRuntime(store.onnx(FACE_MESH.asset), threads=threads)))
