"""Everything the node publishes about one image: ~/heads, /tf, ~/attention and its events, ~/markers, ~/debug_image,
and the ROS4HRI topics (ros.ros4hri) when enabled.

Each message is stamped with the image's header (REP-155). Markers and the
debug image are built only while something subscribes to them.
"""

from __future__ import annotations

from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from headpose_ros.msg import AttentionEvent, AttentionTargetArray, HeadPoseArray

from ..core.config import AttentionConfig
from ..core.types import FrameResult
from ..core.visualization import annotate
from .markers import MarkerIds, marker_array
from .messages import attention_array, attention_event, bgr_image, head_pose_array, heads_transforms
from .parameters import NodeConfig
from .ros4hri import Ros4HriPublisher
from .tf_publisher import TfPublisher


class ResultPublisher:
    """Turns FrameResults into messages on the node's output topics.

    settings: the node's settings (publish_tf, publish_markers, frame prefixes,
    camera_frame); attention: whether ~/attention and ~/attention_events exist.
    """

    def __init__(self, node, settings: NodeConfig, attention: bool):
        self._node = node
        self.settings = settings
        self.heads = node.create_publisher(HeadPoseArray, "~/heads", 10)
        self.tf = TfPublisher(node) if settings.publish_tf else None
        self.attention = node.create_publisher(AttentionTargetArray, "~/attention", 10) if attention else None
        self.events = node.create_publisher(AttentionEvent, "~/attention_events", 10) if attention else None
        self.markers = node.create_publisher(MarkerArray, "~/markers", 10) if settings.publish_markers else None
        self.marker_ids = MarkerIds()
        self.debug_image = node.create_publisher(Image, "~/debug_image", 2)
        self.ros4hri = Ros4HriPublisher(node, settings.ros4hri) if settings.ros4hri.enabled else None

    def publish(self, header, result: FrameResult, rgb, attention_config: AttentionConfig) -> None:
        """Publish one image's result; `header` is the image's (its frame replaced by camera_frame when set)."""
        if self.settings.camera_frame:
            header = Header(stamp=header.stamp, frame_id=self.settings.camera_frame)
        height, width = rgb.shape[:2]
        self.heads.publish(head_pose_array(header, result.heads, width, height))
        self._publish_tf(header, result.heads)
        if self.ros4hri is not None:
            self.ros4hri.publish(header, result, rgb)
        by_face = {a.face_id: a for a in result.attention}
        if self.attention is not None:
            self.attention.publish(attention_array(header, result.attention))
            for event in result.events:
                self.events.publish(attention_event(header, event))
        if self.markers is not None and self.markers.get_subscription_count() > 0:
            a = attention_config
            self.markers.publish(marker_array(header, result.heads, by_face, result.ended, self.marker_ids,
                                              a.cone_half_angle_deg, min(1.0, a.max_distance_m)))
        else:
            # Nobody draws them (1.8 ms a frame for 6 faces): only forget the ended tracks' ids.
            for track_id in result.ended:
                self.marker_ids.release(track_id)
        if self.debug_image.get_subscription_count() > 0:
            self.debug_image.publish(bgr_image(header, annotate(rgb, result.camera, result.heads, by_face)))

    def close(self, stamp) -> None:
        """No face is left (the node stops or pauses): the ROS4HRI topics say so."""
        if self.ros4hri is not None:
            self.ros4hri.close(Header(stamp=stamp, frame_id=self.settings.camera_frame))

    def _publish_tf(self, header, heads) -> None:
        if self.tf is None or not heads:
            return
        if not header.frame_id:
            self._node.get_logger().warn("image has an empty header.frame_id: no TF published; set the "
                                         "`camera_frame` parameter", throttle_duration_sec=10.0)
            return
        self.tf.send(heads_transforms(header, heads, self.settings.face_frame_prefix, self.settings.gaze_frame_prefix))
