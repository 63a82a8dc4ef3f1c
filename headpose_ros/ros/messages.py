"""Engine results to ROS messages: HeadPoseArray, the REP-155 TF frames, and the attention messages."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Pose, PoseWithCovariance, Quaternion, Transform, TransformStamped, Vector3
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from headpose_ros.msg import AttentionCandidate, AttentionTarget, AttentionTargetArray
from headpose_ros.msg import AttentionEvent as AttentionEventMsg
from headpose_ros.msg import HeadPose as HeadPoseMsg
from headpose_ros.msg import HeadPoseArray

from ..core.types import HeadPose
from ..core.rotation import GAZE_IN_FACE, quaternion_xyzw

_GAZE_Q = quaternion_xyzw(GAZE_IN_FACE)


def _quaternion(q: np.ndarray) -> Quaternion:
    return Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))


def region_of_interest(box: np.ndarray, width: int, height: int) -> RegionOfInterest:
    """The face box clipped to the image, in whole pixels."""
    x0, y0 = int(np.clip(np.floor(box[0]), 0, width)), int(np.clip(np.floor(box[1]), 0, height))
    x1, y1 = int(np.clip(np.ceil(box[2]), 0, width)), int(np.clip(np.ceil(box[3]), 0, height))
    return RegionOfInterest(x_offset=x0, y_offset=y0, width=max(0, x1 - x0), height=max(0, y1 - y0), do_rectify=False)


def head_pose_msg(head: HeadPose, width: int, height: int) -> HeadPoseMsg:
    yaw, pitch, roll = head.yaw_pitch_roll_deg
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in head.t)
    pose.orientation = _quaternion(head.quaternion_xyzw)
    return HeadPoseMsg(
        id=head.track_id,
        method=head.method,
        pose=PoseWithCovariance(pose=pose, covariance=[float(c) for c in np.asarray(head.covariance).ravel()]),
        yaw=float(yaw),
        pitch=float(pitch),
        roll=float(roll),
        confidence=float(np.clip(head.confidence, 0.0, 1.0)),
        roi=region_of_interest(head.box, width, height),
    )


def head_pose_array(header: Header, heads: list[HeadPose], width: int, height: int) -> HeadPoseArray:
    return HeadPoseArray(header=header, heads=[head_pose_msg(h, width, height) for h in heads])


def face_transforms(header: Header, head: HeadPose, face_prefix: str, gaze_prefix: str) -> list[TransformStamped]:
    """face_<id> in the camera optical frame, and gaze_<id> in face_<id> (REP-155), stamped like the image."""
    face_frame = f"{face_prefix}{head.track_id}"
    face = TransformStamped()
    face.header.stamp = header.stamp
    face.header.frame_id = header.frame_id
    face.child_frame_id = face_frame
    face.transform = Transform(
        translation=Vector3(x=float(head.t[0]), y=float(head.t[1]), z=float(head.t[2])),
        rotation=_quaternion(head.quaternion_xyzw),
    )
    gaze = TransformStamped()
    gaze.header.stamp = header.stamp
    gaze.header.frame_id = face_frame
    gaze.child_frame_id = f"{gaze_prefix}{head.track_id}"
    gaze.transform.rotation = _quaternion(_GAZE_Q)
    return [face, gaze]


def heads_transforms(header: Header, heads: list[HeadPose], face_prefix: str,
                     gaze_prefix: str) -> list[TransformStamped]:
    """face_transforms of every head, in order: one /tf message's transforms."""
    return [t for head in heads for t in face_transforms(header, head, face_prefix, gaze_prefix)]


def bgr_image(header: Header, bgr: np.ndarray) -> Image:
    """A sensor_msgs/Image (bgr8) of an (h, w, 3) uint8 BGR array."""
    h, w = bgr.shape[:2]
    return Image(header=header, height=h, width=w, encoding="bgr8", is_bigendian=0, step=w * 3, data=bgr.tobytes())


def attention_array(header: Header, attention) -> AttentionTargetArray:
    """AttentionTargetArray of core.attention.FaceAttention values (NaN where there is no target)."""
    return AttentionTargetArray(header=header, targets=[AttentionTarget(
        id=a.face_id, target=a.target, target_frame=a.target_frame, angle_deg=float(a.angle_deg),
        distance_m=float(a.distance_m), looking_at_robot=bool(a.looking_at_robot), mutual_gaze=bool(a.mutual_gaze),
        dwell_s=float(a.dwell_s), score=float(a.score),
        candidates=[AttentionCandidate(name=c.name, frame=c.frame, angle_deg=float(c.angle_deg),
                                       distance_m=float(c.distance_m), score=float(c.score), in_view=bool(c.in_view))
                    for c in a.candidates],
    ) for a in attention])


def attention_event(header: Header, event) -> AttentionEventMsg:
    return AttentionEventMsg(header=header, id=event.face_id, previous_target=event.previous, target=event.current,
                             previous_dwell_s=float(event.previous_dwell_s))
