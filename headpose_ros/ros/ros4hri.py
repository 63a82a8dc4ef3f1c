"""The ROS4HRI (REP-155) face topics, for HRI stacks built on hri_msgs (pyhri/libhri, hri_engagement, hri_rviz).

Published while `ros4hri.enabled`, with the ids of ~/heads and of the face_<id> / gaze_<id> TF frames:

- ``/humans/faces/tracked`` (hri_msgs/IdsList): the faces with a pose in the latest image, every image;
- ``/humans/faces/<id>/roi`` (hri_msgs/NormalizedRegionOfInterest2D): the face box as fractions of the image
  size, with the face's confidence;
- ``/humans/faces/<id>/cropped`` and ``/aligned`` (sensor_msgs/Image, bgr8, `face_image_size` square): the
  face scaled to fit, centred and padded with black; aligned is also turned so that the eyes are level. Drawn
  only while subscribed;
- ``/humans/interactions/gazing`` (hri_msgs/Gaze): a face that attends the robot (receiver "") or another face
  (receiver: its id), every image while it lasts. Sender and receiver are face ids: this package does not
  associate faces with persons (hri_person_manager does).

QoS as the reference face detector publishes (hri_face_detect): reliable, volatile, depth 1; the per-face
publishers exist while the face's track lives. All messages carry the image's header.
"""

from __future__ import annotations

import math
import re

import cv2
import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ..core.attention import FACE_TARGET_PREFIX
from ..core.config import ROBOT
from ..core.types import FrameResult, HeadPose
from .messages import bgr_image
from .parameters import Ros4HriConfig

HRI_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
# A name token of a ROS topic: REP-155 ids become /humans/faces/<id>/... .
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def ros4hri_problems(face_frame_prefix: str, gaze_frame_prefix: str, id_prefix: str, id_style: str) -> list[str]:
    """Why the ROS4HRI topics cannot be published with these settings (REP-155 frames and ids)."""
    problems = []
    if (face_frame_prefix, gaze_frame_prefix) != ("face_", "gaze_"):
        problems.append("ros4hri.enabled needs face_frame_prefix 'face_' and gaze_frame_prefix 'gaze_' (REP-155 "
                        f"frames), not '{face_frame_prefix}' and '{gaze_frame_prefix}'")
    sample = id_prefix + ("abcde" if id_style == "random" else "0001")
    if not _TOKEN.fullmatch(sample):
        problems.append(f"ros4hri.enabled needs ids that start with a letter (they become topic names, "
                        f"/humans/faces/<id>/roi): ids here would be like '{sample}'; use tracking.id_style random, "
                        "or a tracking.id_prefix that starts with a letter")
    return problems


def face_image(rgb: np.ndarray, box: np.ndarray, size: int, angle_deg: float = 0.0) -> np.ndarray:
    """The face of `box` (x0, y0, x1, y1 px) scaled to fit a size x size BGR image, centred, padded black, and
    turned by angle_deg counter-clockwise on screen about the box centre."""
    x0, y0, x1, y1 = (float(v) for v in box)
    scale = size / max(x1 - x0, y1 - y0, 1.0)
    M = cv2.getRotationMatrix2D(((x0 + x1) / 2, (y0 + y1) / 2), angle_deg, scale)
    M[:, 2] += size / 2 - np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    face = cv2.warpAffine(rgb, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.ascontiguousarray(face[:, :, ::-1])


def eye_line_angle_deg(head: HeadPose) -> float:
    """How far the face is turned in the image, counter-clockwise on screen, in degrees: the angle that levels
    its eyes when the image is turned back by it (from the face's up axis, R[:, 2], seen in the image)."""
    up_x, up_y = float(head.R[0, 2]), float(head.R[1, 2])  # image x right, y down
    return -math.degrees(math.atan2(up_x, -up_y))


class Ros4HriPublisher:
    """Publishes the ROS4HRI face topics of each image (module docstring); close() says that no face is left."""

    def __init__(self, node, config: Ros4HriConfig):
        from hri_msgs.msg import Gaze, IdsList, NormalizedRegionOfInterest2D

        self._node = node
        self._size = config.face_image_size
        self._types = (IdsList, NormalizedRegionOfInterest2D, Gaze)
        self.tracked = node.create_publisher(IdsList, "/humans/faces/tracked", HRI_QOS)
        self.gazing = node.create_publisher(Gaze, "/humans/interactions/gazing", HRI_QOS)
        self._faces: dict[str, tuple] = {}  # id -> (roi, cropped, aligned) publishers

    def publish(self, header, result: FrameResult, rgb: np.ndarray) -> None:
        IdsList, Roi, Gaze = self._types
        height, width = rgb.shape[:2]
        for track_id in result.ended:
            self._forget(track_id)
        self.tracked.publish(IdsList(header=header, ids=[h.track_id for h in result.heads]))
        for head in result.heads:
            roi, cropped, aligned = self._publishers(head.track_id)
            x0, y0, x1, y1 = np.clip(np.asarray(head.box, float), 0, [width, height, width, height])
            roi.publish(Roi(header=header, xmin=x0 / width, ymin=y0 / height, xmax=x1 / width, ymax=y1 / height,
                            c=float(head.confidence)))
            if cropped.get_subscription_count() > 0:
                cropped.publish(bgr_image(header, face_image(rgb, head.box, self._size)))
            if aligned.get_subscription_count() > 0:
                angle = eye_line_angle_deg(head)
                aligned.publish(bgr_image(header, face_image(rgb, head.box, self._size, -angle)))
        for attention in result.attention:
            receiver = gaze_receiver(attention.target)
            if receiver is not None:
                self.gazing.publish(Gaze(header=header, sender=attention.face_id, receiver=receiver))

    def close(self, header) -> None:
        """No face is tracked any more (the node stops or is deactivated): say so, and drop the face topics."""
        IdsList = self._types[0]
        self.tracked.publish(IdsList(header=header, ids=[]))
        for track_id in list(self._faces):
            self._forget(track_id)

    def _publishers(self, track_id: str) -> tuple:
        if track_id not in self._faces:
            _, Roi, _ = self._types
            base = f"/humans/faces/{track_id}"
            self._faces[track_id] = (self._node.create_publisher(Roi, f"{base}/roi", HRI_QOS),
                                     self._node.create_publisher(Image, f"{base}/cropped", HRI_QOS),
                                     self._node.create_publisher(Image, f"{base}/aligned", HRI_QOS))
        return self._faces[track_id]

    def _forget(self, track_id: str) -> None:
        for publisher in self._faces.pop(track_id, ()):
            self._node.destroy_publisher(publisher)


def gaze_receiver(target: str) -> str | None:
    """The Gaze receiver of an attended target: "" for the robot, a face's id, None for anything else."""
    if target == ROBOT:
        return ""
    if target.startswith(FACE_TARGET_PREFIX):
        return target[len(FACE_TARGET_PREFIX):]
    return None
