"""A camera mounted sideways or upside down: its image turned upright for the engine, the results turned back.

The detector and the networks expect upright faces. For `image_rotation` degrees
clockwise (a multiple of 90), the image is turned, and with it the camera: the
turned image is what a camera rolled about its optical axis would see, so its
intrinsics are K' = A K Q^T, with A the pixel map and Q the rotation of the
optical frame. Everything the engine measures in that frame comes back with
Q^T (poses, attention targets) and A^-1 (boxes, landmarks), so the outputs are
in the camera's own optical frame and pixels, as if nothing had been turned.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .attention import AttentionScene, RobotGaze
from .camera import CameraModel, CameraModelError
from .types import FrameResult, HeadPose

# One quarter turn clockwise on screen: the upright frame's axes in the camera's (x' = -y, y' = x).
_QUARTER = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


class Upright:
    """The turn of `degrees` clockwise (0, 90, 180, 270) for images of width x height pixels.

    Q: (3, 3) rotation taking camera optical coordinates to the upright frame's.
    A: (3, 3) homogeneous map of pixel centres (OpenCV's and K's convention), camera image -> upright image.
    A_edges: the same map for box edges (a box of the whole image is [0, 0, w, h]).
    """

    def __init__(self, degrees: int, width: int, height: int):
        if degrees % 90:
            raise ValueError(f"image_rotation must be a multiple of 90 degrees, not {degrees}")
        self.turns = (degrees // 90) % 4
        self.size = (width, height)
        self.Q, self.A = np.eye(3), np.eye(3)
        w, h = width, height
        for _ in range(self.turns):
            # (u, v) -> (h - 1 - v, u) on a w x h image; the next turn sees an h x w one.
            step = np.array([[0.0, -1.0, h - 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
            self.A, self.Q = step @ self.A, _QUARTER @ self.Q
            w, h = h, w
        self.upright_size = (w, h)
        half = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])  # centre -> edge coordinates
        self.A_edges = half @ self.A @ np.linalg.inv(half)
        self._A_inv, self._A_edges_inv = np.linalg.inv(self.A), np.linalg.inv(self.A_edges)

    def image(self, rgb: np.ndarray) -> np.ndarray:
        """(h, w, 3) -> the upright image (contiguous)."""
        return np.ascontiguousarray(np.rot90(rgb, k=-self.turns))

    def camera(self, camera: CameraModel) -> CameraModel:
        """The intrinsics of the upright image (camera sized to this image: CameraModel.fitted_to first)."""
        w, h = self.upright_size
        K = self.A @ camera.K @ self.Q.T
        return dataclasses.replace(camera, K=K, D=self._distortion(camera), width=w, height=h)

    def _distortion(self, camera: CameraModel) -> np.ndarray:
        """OpenCV's coefficients in the upright frame: radial terms do not change under a roll of the optical
        axis; tangential (p1, p2) and thin-prism (s1..s4) ones are 2D vectors that turn with it."""
        D = camera.D.copy()
        if camera.distortion_model == "equidistant" or D.size <= 2:
            return D
        if D.size > 12 and np.any(D[12:] != 0):
            raise CameraModelError("image_rotation cannot turn a tilted-sensor distortion model (tauX, tauY); "
                                   "calibrate the camera in its mounted orientation")
        Q2 = self.Q[:2, :2]
        D[2], D[3] = (Q2 @ np.array([D[3], D[2]]))[::-1]  # (p2, p1) turns like (x, y)
        if D.size >= 12:
            D[8], D[10] = Q2 @ np.array([D[8], D[10]])  # (s1, s3): the r^2 terms in x and y
            D[9], D[11] = Q2 @ np.array([D[9], D[11]])  # (s2, s4): the r^4 terms
        return D

    def scene(self, scene: AttentionScene | None) -> AttentionScene | None:
        """The attention targets placed in the upright frame."""
        if scene is None:
            return None
        targets = [dataclasses.replace(t, position=self.Q @ t.position) for t in scene.targets]
        gaze = None if scene.robot_gaze is None else RobotGaze(self.Q @ scene.robot_gaze.origin,
                                                                self.Q @ scene.robot_gaze.direction)
        return AttentionScene(targets, gaze, list(scene.problems))

    def boxes(self, boxes: np.ndarray) -> np.ndarray:
        """(n, 4) x0, y0, x1, y1 in the camera's image -> the upright image (given boxes, e.g. a dataset's)."""
        return _boxes_through(self.A_edges, boxes)

    def result(self, result: FrameResult, camera: CameraModel) -> FrameResult:
        """A result measured in the upright image, in the camera's frame and pixels (camera: as processed)."""
        Qt = self.Q.T
        heads = [self._head(h, Qt) for h in result.heads]
        attention = [dataclasses.replace(a, candidates=[dataclasses.replace(c, position=Qt @ c.position)
                                                        for c in a.candidates]) for a in result.attention]
        return dataclasses.replace(result, camera=camera, heads=heads, attention=attention)

    def _head(self, head: HeadPose, Qt: np.ndarray) -> HeadPose:
        B = np.kron(np.eye(2), Qt)  # position and rotation-vector blocks of the covariance
        cov = np.asarray(head.covariance, dtype=np.float64)
        landmarks = None if head.landmarks_px is None else _points_through(self._A_inv, head.landmarks_px)
        return dataclasses.replace(head, R=Qt @ head.R, t=Qt @ head.t, covariance=B @ cov @ B.T,
                                   box=_boxes_through(self._A_edges_inv, np.asarray(head.box).reshape(1, 4))[0],
                                   landmarks_px=landmarks)


def _points_through(A: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(k, 2) pixels through the homogeneous map A (3, 3)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return p @ A[:2, :2].T + A[:2, 2]


def _boxes_through(A: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(n, 4) boxes through A: the bounds of their mapped corners (a quarter turn keeps boxes axis-aligned)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    corners = _points_through(A, b[:, [0, 1, 2, 3]].reshape(-1, 2)).reshape(-1, 2, 2)
    return np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
