"""Rotation conventions of the package, in one place.

All rotations are (3, 3) matrices whose columns are a child frame's axes
expressed in its parent frame; the camera optical frame is x right, y down,
z forward; the REP-155 face frame is x out of the face, y to the person's
left, z up. Angles are radians everywhere except in functions named ``*_deg``.
"""

from __future__ import annotations

import numpy as np
from transforms3d import euler, quaternions

# The face frame of a person looking straight into the camera along its optical
# axis: face x = camera -z, face y = camera +x, face z = camera -y.
FACING_CAMERA = np.array([
    [0.0, 1.0, 0.0],
    [0.0, 0.0, -1.0],
    [-1.0, 0.0, 0.0],
])

# The REP-155 gaze frame in the face frame: same origin, optical convention
# (z along the gaze = face x, x to the person's right = face -y, y down = face -z).
GAZE_IN_FACE = np.array([
    [0.0, 0.0, 1.0],
    [-1.0, 0.0, 0.0],
    [0.0, -1.0, 0.0],
])


def line_of_sight(position: np.ndarray | None) -> np.ndarray:
    """(3, 3) the smallest rotation taking the optical axis onto the ray from the camera to `position` (3,) m.

    The identity without a usable position (None, zero, non-finite or behind the camera).
    """
    if position is None:
        return np.eye(3)
    p = np.asarray(position, dtype=np.float64)
    if not np.all(np.isfinite(p)) or p[2] <= 0:
        return np.eye(3)
    return rotation_between(np.array([0.0, 0.0, 1.0]), p)


def yaw_pitch_roll_deg(camera_from_face: np.ndarray, position: np.ndarray | None = None) -> np.ndarray:
    """(3,) yaw, pitch, roll in degrees of a face orientation in the camera optical frame.

    Zero is facing the camera: the face's x axis pointing back along the line
    of sight from the camera to `position` (the face's sellion, metres), the
    head upright as the camera sees it (FACING_CAMERA turned onto that line by
    line_of_sight). Without a position the line of sight is the optical axis
    (reference FACING_CAMERA). The rotation relative to that reference is decomposed as
    Rz(yaw) Ry(pitch) Rx(roll) about the face's own axes (see msg/HeadPose.msg):
    yaw > 0 turns to the person's left, pitch > 0 looks down, roll > 0 tilts
    toward the person's right shoulder (counter-clockwise in the image).
    """
    relative = FACING_CAMERA.T @ line_of_sight(position).T @ camera_from_face
    return np.degrees(euler.mat2euler(relative, "rzyx"))


def camera_from_yaw_pitch_roll_deg(yaw: float, pitch: float, roll: float,
                                   position: np.ndarray | None = None) -> np.ndarray:
    """Inverse of yaw_pitch_roll_deg: the face orientation (3, 3) in the camera optical frame."""
    return line_of_sight(position) @ FACING_CAMERA @ euler.euler2mat(*np.radians([yaw, pitch, roll]), "rzyx")


def quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """(4,) unit quaternion x, y, z, w (ROS order) of a rotation matrix, with w >= 0."""
    w, x, y, z = quaternions.mat2quat(R)
    q = np.array([x, y, z, w])
    return q if w >= 0 else -q


def matrix_from_quaternion_xyzw(q: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of a quaternion in ROS order x, y, z, w (normalised first)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return quaternions.quat2mat([w, x, y, z])


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) taking unit vector a onto unit vector b."""
    from transforms3d import axangles

    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.clip(a @ b, -1.0, 1.0))
    if s < 1e-12:
        if c > 0:
            return np.eye(3)
        # Opposite vectors: any perpendicular axis works.
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        return axangles.axangle2mat(perp, np.pi)
    return axangles.axangle2mat(axis, np.arctan2(s, c))


def angle_between_deg(R1: np.ndarray, R2: np.ndarray) -> float:
    """Geodesic angle in degrees between two rotations."""
    c = (np.trace(R1.T @ R2) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
