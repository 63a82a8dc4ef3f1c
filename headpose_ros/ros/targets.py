"""Attention targets placed in the camera optical frame each image, with tf2 where installed.

The targets themselves (the robot, attention.targets.<name>.*) are settings
of the engine (core.config.AttentionConfig), placed by core.attention.place_scene.
This module gives that placement its TF lookup. The frame "" (and the
camera's own frame) needs no TF. Any other frame is looked up with tf2_ros
(latest transform) where it is installed; where it is not (ROS 2 from PyPI
wheels), a target in another frame stops the start-up with a message naming
the missing package.
"""

from __future__ import annotations

import numpy as np

from ..core.attention import AttentionScene, place_scene
from ..core.config import AttentionConfig
from ..core.rotation import matrix_from_quaternion_xyzw


class TargetError(ValueError):
    """Targets that cannot work here; the message says which and why."""


def _tf2_ros():
    try:
        import tf2_ros
    except ImportError:
        return None
    return tf2_ros


class TargetResolver:
    """Places the robot, the configured targets and the robot's gaze in the camera optical frame.

    camera_frame: the node's camera_frame parameter ("" when unset), treated as
    the camera's own frame like the image's header.frame_id.
    """

    def __init__(self, node, config: AttentionConfig, camera_frame: str = ""):
        self.config = config
        self.camera_frame = camera_frame
        frames = {s.frame for s in (config.robot, *config.targets)}
        if config.mutual_gaze:
            frames.add(config.robot_gaze_frame)
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

    def resolve(self, camera_frame: str) -> AttentionScene:
        """The targets and the robot's gaze in `camera_frame` now, with a message per one that could not be placed."""

        def lookup(frame: str) -> tuple[np.ndarray, np.ndarray]:
            if frame == self.camera_frame or self.buffer is None:
                return np.eye(3), np.zeros(3)
            import rclpy.time

            tf = self.buffer.lookup_transform(camera_frame, frame, rclpy.time.Time()).transform
            q, p = tf.rotation, tf.translation
            return matrix_from_quaternion_xyzw([q.x, q.y, q.z, q.w]), np.array([p.x, p.y, p.z])

        return place_scene(self.config, camera_frame, lookup)
