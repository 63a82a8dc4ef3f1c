"""Attention targets from parameters, placed in the camera optical frame each image (tf2 where installed).

A target is a name, a TF frame and an offset (metres) in that frame, with an
optional cone. The frame "" means the camera's own optical frame (the image's
header.frame_id): such targets need no TF. Any other frame is looked up with
tf2_ros (latest transform) where it is installed; where it is not (ROS 2 from
PyPI wheels), a target in another frame stops the start-up with a message
naming the missing package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.attention import ROBOT, RobotGaze, TargetPoint
from ..core.rotation import matrix_from_quaternion_xyzw

GAZE_AXES = {"x": 0, "y": 1, "z": 2}


class TargetError(ValueError):
    """Targets that cannot work here; the message says which and why."""


@dataclass(frozen=True)
class TargetSpec:
    """A configured target: name, frame ("" = the camera optical frame), offset (3,) m in it, cone (deg, 0 = default)."""

    name: str
    frame: str = ""
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cone_half_angle_deg: float = 0.0

    def problems(self) -> list[str]:
        found = []
        if len(self.offset) != 3 or not np.all(np.isfinite(self.offset)):
            found.append(f"target '{self.name}': offset must be three finite numbers [x, y, z] (metres)")
        if not 0 <= self.cone_half_angle_deg < 90:
            found.append(f"target '{self.name}': cone_half_angle_deg must be in [0, 90) (0 = the default cone)")
        return found


@dataclass(frozen=True)
class GazeSpec:
    """The robot's own gaze, for mutual gaze: a frame ("" = the camera optical frame) and its looking axis."""

    frame: str = ""
    axis: str = "z"


def _tf2_ros():
    try:
        import tf2_ros
    except ImportError:
        return None
    return tf2_ros


class TargetResolver:
    """Places the robot, the configured targets and the robot's gaze in the camera optical frame."""

    def __init__(self, node, robot: TargetSpec, targets: list[TargetSpec], gaze: GazeSpec | None,
                 camera_frame: str = ""):
        problems = [p for spec in [robot, *targets] for p in spec.problems()]
        names = [robot.name] + [t.name for t in targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"target names must be unique (and not '{ROBOT}'): {', '.join(duplicates)}")
        if gaze is not None and gaze.axis not in GAZE_AXES:
            problems.append(f"attention.robot_gaze_axis must be x, y or z, not '{gaze.axis}'")
        if problems:
            raise TargetError("; ".join(problems))
        self.robot, self.targets, self.gaze = robot, targets, gaze
        self.camera_frame = camera_frame
        frames = {s.frame for s in [robot, *targets]} | ({gaze.frame} if gaze else set())
        foreign = sorted(f for f in frames if f not in ("", camera_frame))
        tf2_ros = _tf2_ros()
        self.buffer = None
        if foreign:
            if tf2_ros is None:
                raise TargetError(
                    f"attention targets in frame(s) {', '.join(foreign)} need tf2_ros to be placed in the camera "
                    "frame, and tf2_ros is not installed (ROS 2 from PyPI wheels has none): install ROS 2's "
                    "tf2_ros (apt install ros-$ROS_DISTRO-tf2-ros), or give those targets in the camera's frame "
                    "(frame: '', offset in metres in the camera optical frame)")
            self.buffer = tf2_ros.Buffer()
            self.listener = tf2_ros.TransformListener(self.buffer, node)
        self.backend = "tf2_ros" if self.buffer is not None else "camera frame only"

    def _transform(self, camera_frame: str, frame: str) -> tuple[np.ndarray, np.ndarray]:
        """(R (3, 3), t (3,)) of `frame` in the camera frame; identity for the camera's own frame."""
        if frame in ("", camera_frame, self.camera_frame):
            return np.eye(3), np.zeros(3)
        import rclpy.time

        tf = self.buffer.lookup_transform(camera_frame, frame, rclpy.time.Time()).transform
        q, p = tf.rotation, tf.translation
        return matrix_from_quaternion_xyzw([q.x, q.y, q.z, q.w]), np.array([p.x, p.y, p.z])

    def resolve(self, camera_frame: str) -> tuple[list[TargetPoint], RobotGaze | None, list[str]]:
        """The targets and the robot's gaze in `camera_frame` now, and a message per one that could not be placed."""
        points, problems = [], []
        for spec in [self.robot, *self.targets]:
            try:
                R, t = self._transform(camera_frame, spec.frame)
            except Exception as exc:  # tf2's LookupException, ExtrapolationException, ...
                problems.append(f"target '{spec.name}': no transform {camera_frame} <- {spec.frame} "
                                f"({type(exc).__name__}: {exc})")
                continue
            points.append(TargetPoint(spec.name, spec.frame or camera_frame, R @ np.asarray(spec.offset, float) + t,
                                      spec.cone_half_angle_deg or None))
        gaze = None
        if self.gaze is not None:
            try:
                R, t = self._transform(camera_frame, self.gaze.frame)
                gaze = RobotGaze(t, R[:, GAZE_AXES[self.gaze.axis]])
            except Exception as exc:
                problems.append(f"robot gaze: no transform {camera_frame} <- {self.gaze.frame} "
                                f"({type(exc).__name__}: {exc})")
        return points, gaze, problems
