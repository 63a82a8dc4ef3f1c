"""Where the node's intrinsics come from: the latest usable CameraInfo, else the opt-in guess, else none.

Refused CameraInfo takes the previous intrinsics out of use too (they no
longer describe the camera). Every refusal and every guess is said, throttled.
"""

from __future__ import annotations

from typing import Callable

from sensor_msgs.msg import CameraInfo

from ..core.camera import CameraModel
from .image_conversion import camera_from_info_msg


class IntrinsicsSource:
    """The camera model for each image, from the `camera_info` subscription.

    node: the node (its logger, its publisher counts); warn_each: a per-message
    throttled warning; fallback_fov_deg: the opt-in guessed field of view (0: off);
    on_stamp: called with each CameraInfo's stamp as (sec, nanosec).
    """

    def __init__(self, node, topic: str, qos, fallback_fov_deg: float, warn_each,
                 on_stamp: Callable[[tuple[int, int]], None] | None = None):
        self._node = node
        self._warn_each = warn_each
        self._on_stamp = on_stamp
        self.fallback_fov_deg = fallback_fov_deg
        self.camera: CameraModel | None = None  # the latest usable intrinsics
        self.problem = "no CameraInfo received yet"
        self.received = False
        self.frame_id = ""
        self.subscription = node.create_subscription(CameraInfo, topic, self._on_camera_info, qos)

    @property
    def topic(self) -> str:
        return self.subscription.topic_name

    def _publishers(self) -> int:
        return self._node.count_publishers(self.topic)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.received = True
        if self._on_stamp is not None:
            self._on_stamp((msg.header.stamp.sec, msg.header.stamp.nanosec))
        camera = camera_from_info_msg(msg)
        problems = camera.problems()
        if problems:
            self.camera, self.problem = None, "; ".join(problems)
            self._warn_each(f"refusing camera info on '{self.topic}': {self.problem}; "
                            "no poses until a calibrated CameraInfo arrives")
            return
        self.camera, self.problem = camera, ""
        self.frame_id = msg.header.frame_id

    def camera_for(self, width: int, height: int, frame_id: str) -> CameraModel | None:
        """The intrinsics to use for this image: the latest valid CameraInfo, else the opt-in fallback, else None."""
        log = self._node.get_logger()
        if self.camera is not None:
            if frame_id != self.frame_id:
                log.warn(f"image frame_id '{frame_id}' differs from camera info frame_id '{self.frame_id}': are both "
                         "topics from the same camera?", throttle_duration_sec=10.0)
            return self.camera
        if self.fallback_fov_deg > 0:
            log.warn(
                f"using GUESSED intrinsics ({self.fallback_fov_deg:g} deg horizontal field of view, no distortion) "
                f"because of: {self.problem} on '{self.topic}'; positions and angles are "
                "approximate until the camera publishes its calibration", throttle_duration_sec=30.0)
            return CameraModel.from_field_of_view(width, height, self.fallback_fov_deg, frame_id)
        log.warn(
            f"dropping images: {self.problem} on '{self.topic}' ({self._publishers()} publishers); poses need the "
            "camera's K and D (or opt in to guessed intrinsics with fallback_horizontal_fov_deg)",
            throttle_duration_sec=5.0,
        )
        return None

    def state(self) -> str:
        """ok, missing or invalid; with ", fallback <fov> deg" when guessed intrinsics stand in."""
        if self.camera is not None:
            return "ok"
        state = "invalid" if self.received else "missing"
        return f"{state}, fallback {self.fallback_fov_deg:g} deg" if self.fallback_fov_deg > 0 else state

    def waiting_message(self) -> str | None:
        """What the node waits for on camera_info, or None when it has usable intrinsics."""
        if self.camera is not None:
            return None
        return f"waiting for camera info on '{self.topic}': {self.problem} ({self._publishers()} publishers)"
