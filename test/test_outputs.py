"""ros.outputs: one image's FrameResult published on ~/heads, /tf, ~/attention, ~/attention_events, ~/markers
and ~/debug_image.

A ResultPublisher on a real in-process node is given FrameResults built by
hand (heads from core.types.HeadPose, attention from core.attention's real
tracker); a second real node subscribes, and an executor is spun until the
messages arrive. Every test waits until its publishers and subscriptions are
matched both ways before publishing, and uses its own node names and track
ids, so nothing else in the domain is mistaken for its messages.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from headpose_ros.core.attention import AttentionTracker, TargetPoint  # noqa: E402
from headpose_ros.core.camera import CameraModel  # noqa: E402
from headpose_ros.core.config import AttentionConfig, with_values  # noqa: E402
from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg  # noqa: E402
from headpose_ros.core.types import FrameResult, HeadPose  # noqa: E402
from headpose_ros.core.visualization import annotate  # noqa: E402
from headpose_ros.msg import AttentionEvent, AttentionTargetArray, HeadPoseArray  # noqa: E402
from headpose_ros.ros.markers import ATTENDING, NAMESPACES  # noqa: E402
from headpose_ros.ros.outputs import ResultPublisher  # noqa: E402
from headpose_ros.ros.parameters import NodeConfig  # noqa: E402
from headpose_ros.ros.tf_publisher import TF_QOS  # noqa: E402

from support import NodeUnderTest  # noqa: E402

pytestmark = pytest.mark.ros

TIMEOUT = 10.0
ATTENTION = with_values(AttentionConfig(), {"min_dwell_s": 0.0})  # a target in view is attended at once
RGB = np.full((240, 320, 3), 60, np.uint8)  # the ROI is clipped to this size


def head(track_id: str, t=(0.0, 0.0, 1.0), yaw=0.0) -> HeadPose:
    return HeadPose(track_id=track_id, R=camera_from_yaw_pitch_roll_deg(yaw, 0.0, 0.0), t=np.array(t),
                    covariance=-np.eye(6), box=np.array([100.0, 60.0, 400.0, 200.0]), confidence=0.9,
                    method="landmarks")


def result(heads, stamp: float, ended=(), tracker: AttentionTracker | None = None, camera=None) -> FrameResult:
    """A FrameResult of `heads`, with their attention to a robot at the camera when a tracker is given."""
    attention, events = [], []
    if tracker is not None:
        attention, events = tracker.update(heads, [TargetPoint("robot", "", np.zeros(3))], stamp)
    return FrameResult(stamp=stamp, camera=camera, heads=list(heads), faces_detected=len(heads), ended=list(ended),
                       attention=attention, events=events)


def header(frame_id: str, sec: int) -> Header:
    return Header(stamp=Time(sec=sec, nanosec=500), frame_id=frame_id)


class Outputs(NodeUnderTest):
    """A ResultPublisher on its own node, and a listener node recording what it publishes."""

    def __init__(self, settings: NodeConfig = NodeConfig(), attention: bool = True, markers: bool = False,
                 debug: bool = False):
        super().__init__("test_outputs")
        self.publisher = ResultPublisher(self.node, settings, attention=attention)
        self.heads: list[HeadPoseArray] = []
        self.tf: list[TFMessage] = []
        self.attention: list[AttentionTargetArray] = []
        self.events: list[AttentionEvent] = []
        self.markers: list[MarkerArray] = []
        self.debug: list[Image] = []
        base = f"/{self.node.get_name()}"
        pairs = [(self._sub(HeadPoseArray, f"{base}/heads", self.heads.append), self.publisher.heads)]
        if self.publisher.tf is not None:
            tf_publisher = next(p for p in self.node.publishers if p.topic_name == "/tf")
            pairs.append((self.listener.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS), tf_publisher))
        if attention:
            pairs.append((self._sub(AttentionTargetArray, f"{base}/attention", self.attention.append),
                          self.publisher.attention))
            pairs.append((self._sub(AttentionEvent, f"{base}/attention_events", self.events.append),
                          self.publisher.events))
        if markers:
            pairs.append((self._sub(MarkerArray, f"{base}/markers", self.markers.append), self.publisher.markers))
        if debug:
            pairs.append((self._sub(Image, f"{base}/debug_image", self.debug.append), self.publisher.debug_image))
        self._pairs = pairs

    def wait_matched(self) -> None:
        """Until every pair is matched both ways: from then on every reliable message published reaches the
        listener."""
        def matched() -> bool:
            return all(s.get_publisher_count() >= 1 and p.get_subscription_count() >= 1 for s, p in self._pairs)

        assert self.spin_until(matched, TIMEOUT), "publishers and subscriptions not matched"

    def _sub(self, msg_type, topic: str, store):
        return self.listener.create_subscription(msg_type, topic, store, 10)

    def _on_tf(self, msg: TFMessage) -> None:
        if any(self.tag in t.child_frame_id for t in msg.transforms):  # this test's heads only
            self.tf.append(msg)

    def id(self, name: str) -> str:
        return f"{name}{self.tag}"

    def wait(self, predicate) -> bool:
        return self.spin_until(predicate, TIMEOUT)


@pytest.fixture
def make_outputs(ros):
    made: list[Outputs] = []

    def make(**kwargs) -> Outputs:
        made.append(Outputs(**kwargs))
        made[-1].wait_matched()
        return made[-1]

    yield make
    for o in made:
        o.close()


def test_heads_tf_and_attention_are_published_with_the_images_header(make_outputs):
    out = make_outputs()
    face = out.id("a")
    tracker = AttentionTracker(ATTENTION)
    hdr = header("outputs_camera_optical", 1000)
    out.publisher.publish(hdr, result([head(face)], 1000.0, tracker=tracker), RGB, ATTENTION)
    assert out.wait(lambda: out.heads and out.tf and out.attention and out.events)

    heads = out.heads[0]
    assert heads.header == hdr
    assert [h.id for h in heads.heads] == [face]
    roi = heads.heads[0].roi
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (100, 60, 220, 140)  # clipped to 320 x 240
    assert heads.heads[0].pose.pose.position.z == 1.0

    assert len(out.tf) == 1
    assert [(t.header.frame_id, t.child_frame_id) for t in out.tf[0].transforms] == [
        ("outputs_camera_optical", f"face_{face}"), (f"face_{face}", f"gaze_{face}")]
    assert all(t.header.stamp == hdr.stamp for t in out.tf[0].transforms)

    attention = out.attention[0]
    assert attention.header == hdr
    assert [(a.id, a.target, a.looking_at_robot) for a in attention.targets] == [(face, "robot", True)]
    assert attention.targets[0].angle_deg == pytest.approx(0.0, abs=1e-4)
    assert attention.targets[0].distance_m == pytest.approx(1.0)
    assert [c.name for c in attention.targets[0].candidates] == ["robot"]

    assert [(e.id, e.previous_target, e.target) for e in out.events] == [(face, "", "robot")]
    assert out.events[0].header == hdr


def test_the_frame_prefixes_name_the_tf_frames(make_outputs):
    out = make_outputs(settings=NodeConfig(face_frame_prefix="head_", gaze_frame_prefix="eyes_"))
    face = out.id("p")
    out.publisher.publish(header("cam", 1001), result([head(face)], 1001.0), RGB, ATTENTION)
    assert out.wait(lambda: out.tf)
    assert [(t.header.frame_id, t.child_frame_id) for t in out.tf[0].transforms] == [
        ("cam", f"head_{face}"), (f"head_{face}", f"eyes_{face}")]


def test_camera_frame_replaces_the_images_frame(make_outputs):
    out = make_outputs(settings=NodeConfig(camera_frame="robot_head_optical"))
    face = out.id("c")
    tracker = AttentionTracker(ATTENTION)
    out.publisher.publish(header("driver_frame", 1002), result([head(face)], 1002.0, tracker=tracker), RGB,
                          ATTENTION)
    assert out.wait(lambda: out.heads and out.tf and out.attention)
    assert out.heads[0].header.frame_id == "robot_head_optical"
    assert out.attention[0].header.frame_id == "robot_head_optical"
    assert out.tf[0].transforms[0].header.frame_id == "robot_head_optical"


def test_an_empty_header_frame_publishes_heads_but_no_tf(make_outputs):
    out = make_outputs()
    nameless, named = out.id("n"), out.id("m")
    out.publisher.publish(header("", 1003), result([head(nameless)], 1003.0), RGB, ATTENTION)
    out.publisher.publish(header("cam", 1004), result([head(named)], 1004.0), RGB, ATTENTION)
    assert out.wait(lambda: len(out.heads) == 2 and out.tf)
    assert [(h.header.frame_id, h.heads[0].id) for h in out.heads] == [("", nameless), ("cam", named)]
    # One reliable writer delivers in order: a TF of the first image would have arrived before the second's.
    assert [[t.child_frame_id for t in m.transforms] for m in out.tf] == [[f"face_{named}", f"gaze_{named}"]]


def test_a_frame_without_heads_publishes_empty_arrays_and_no_tf(make_outputs):
    out = make_outputs()
    out.publisher.publish(header("cam", 1005), result([], 1005.0, tracker=AttentionTracker(ATTENTION)), RGB,
                          ATTENTION)
    face = out.id("after")
    out.publisher.publish(header("cam", 1006), result([head(face)], 1006.0), RGB, ATTENTION)
    assert out.wait(lambda: len(out.heads) == 2 and out.attention and out.tf)
    assert out.heads[0].heads == [] and out.attention[0].targets == []
    assert len(out.tf) == 1 and out.tf[0].transforms[0].child_frame_id == f"face_{face}"


def test_markers_are_drawn_and_an_ended_tracks_markers_deleted(make_outputs):
    out = make_outputs(markers=True)
    first, second = out.id("first"), out.id("second")
    tracker = AttentionTracker(ATTENTION)
    out.publisher.publish(header("cam", 1007), result([head(first, yaw=10.0)], 1007.0, tracker=tracker), RGB,
                          ATTENTION)
    assert out.wait(lambda: len(out.markers) == 1)
    drawn = out.markers[0].markers
    assert [(m.ns, m.id, m.action) for m in drawn] == [(ns, 1, Marker.ADD) for ns in NAMESPACES]
    # (pitch and roll are 0 up to rounding, so their sign is either)
    assert re.fullmatch(rf"{first}  y\+10 p[+-]0 r[+-]0\n-> robot 0\.0 s", drawn[3].text), drawn[3].text
    cone = drawn[2]
    assert (cone.color.r, cone.color.g, cone.color.b, cone.color.a) == pytest.approx(
        (ATTENDING.r, ATTENDING.g, ATTENDING.b, ATTENDING.a), rel=1e-6)  # float32 on the wire
    assert all(m.header.frame_id == "cam" for m in drawn)

    out.publisher.publish(header("cam", 1008), result([head(second, t=(0.2, 0.0, 1.5))], 1008.0, ended=[first]), RGB,
                          ATTENTION)
    assert out.wait(lambda: len(out.markers) == 2)
    frame = out.markers[1].markers
    assert [(m.ns, m.id, m.action) for m in frame[:5]] == [(ns, 1, Marker.DELETE) for ns in NAMESPACES]
    assert [(m.ns, m.id) for m in frame[5:]] == [(ns, 2) for ns in NAMESPACES]
    assert out.publisher.marker_ids.release(first) is None  # its id is gone with it


def test_the_debug_image_is_the_annotated_input(make_outputs):
    out = make_outputs(debug=True)
    face = out.id("d")
    camera = CameraModel.from_field_of_view(320, 240, 60.0, "cam")
    tracker = AttentionTracker(ATTENTION)
    frame = result([head(face)], 1009.0, tracker=tracker, camera=camera)
    hdr = header("cam", 1009)
    out.publisher.publish(hdr, frame, RGB, ATTENTION)
    assert out.wait(lambda: out.debug)
    image = out.debug[0]
    assert image.header == hdr
    assert (image.width, image.height, image.encoding, image.step) == (320, 240, "bgr8", 960)
    expected = annotate(RGB, camera, frame.heads, {a.face_id: a for a in frame.attention})
    assert bytes(image.data) == expected.tobytes()
    assert bytes(image.data) != RGB.tobytes()  # something was drawn


def test_disabled_outputs_are_not_created_and_heads_still_flow(make_outputs):
    out = make_outputs(settings=NodeConfig(publish_tf=False, publish_markers=False), attention=False)
    assert out.publisher.tf is None
    assert out.publisher.markers is None
    assert out.publisher.attention is None and out.publisher.events is None
    topics = {p.topic_name for p in out.node.publishers}
    base = f"/{out.node.get_name()}"
    assert f"{base}/heads" in topics and f"{base}/debug_image" in topics
    assert "/tf" not in topics and f"{base}/markers" not in topics and f"{base}/attention" not in topics
    face = out.id("h")
    out.publisher.publish(header("cam", 1010), result([head(face)], 1010.0, ended=["gone"]), RGB, ATTENTION)
    assert out.wait(lambda: out.heads)
    assert [h.id for h in out.heads[0].heads] == [face]
