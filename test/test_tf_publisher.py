"""ros.tf_publisher: transforms on /tf, through tf2_ros where installed, else as tf2_msgs/TFMessage with tf2_ros's QoS.

Real in-process nodes over DDS: a TfPublisher on one node, a subscriber with
the same QoS on another, an executor spun until the messages arrive. Frame
names are unique per test, so traffic of anything else in the domain is
ignored.
"""

from __future__ import annotations

import importlib.util
import time

import pytest

rclpy = pytest.importorskip("rclpy")

from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from headpose_ros.tools.ros_harness import stamp_now  # noqa: E402
from headpose_ros.ros.tf_publisher import TF_QOS, TfPublisher  # noqa: E402

from support import NodeUnderTest  # noqa: E402

pytestmark = pytest.mark.ros

HAS_TF2_ROS = importlib.util.find_spec("tf2_ros") is not None
needs_no_tf2_ros = pytest.mark.skipif(HAS_TF2_ROS, reason="tf2_ros is installed: its TransformBroadcaster is used "
                                                          "instead of the tf2_msgs publisher tested here")


def transform(parent: str, child: str, x: float) -> TransformStamped:
    tf = TransformStamped()
    tf.header.stamp = stamp_now()
    tf.header.frame_id = parent
    tf.child_frame_id = child
    tf.transform.translation.x = x
    tf.transform.rotation.w = 1.0
    return tf


class Pair(NodeUnderTest):
    """A TfPublisher on its own node, and a /tf subscriber (TF_QOS) on another that keeps this test's messages."""

    def __init__(self):
        super().__init__("test_tf_publisher")
        self.tf = TfPublisher(self.node)
        self.received: list[TFMessage] = []
        self.subscription = self.listener.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS)

    def _on_tf(self, msg: TFMessage) -> None:
        # This test's transforms only (and empty messages, which name nobody's frames).
        if not msg.transforms or any(self.tag in t.child_frame_id for t in msg.transforms):
            self.received.append(msg)

    def frame(self, name: str) -> str:
        return f"{name}_{self.tag}"

    def warm_up(self) -> None:
        """Send until the subscriber receives (the two are matched both ways from then on)."""
        assert self.spin_until(lambda: self.subscription.get_publisher_count() >= 1)
        k = 0

        def arrived() -> bool:
            nonlocal k
            if self.received:
                return True
            self.tf.send([transform("warm", self.frame(f"warm{k}"), 0.0)])
            k += 1
            return False

        assert self.spin_until(arrived), "no /tf message arrived"


@pytest.fixture
def pair(ros):
    p = Pair()
    yield p
    p.close()


def test_tf_qos_is_tf2_ros_broadcasters_profile():
    assert TF_QOS.depth == 100
    assert TF_QOS.history == HistoryPolicy.KEEP_LAST
    assert TF_QOS.reliability == ReliabilityPolicy.RELIABLE
    assert TF_QOS.durability == DurabilityPolicy.VOLATILE


@needs_no_tf2_ros
def test_without_tf2_ros_it_publishes_tf_messages_on_tf_reliable_and_volatile(pair):
    assert pair.tf.backend == "tf2_msgs"
    name = pair.node.get_name()
    deadline = time.monotonic() + 10.0
    mine = []
    while not mine and time.monotonic() < deadline:
        mine = [i for i in pair.node.get_publishers_info_by_topic("/tf") if i.node_name == name]
        if not mine:
            time.sleep(0.02)
    assert len(mine) == 1
    info = mine[0]
    assert info.topic_type == "tf2_msgs/msg/TFMessage"
    assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    assert info.qos_profile.durability == DurabilityPolicy.VOLATILE


@needs_no_tf2_ros
def test_a_subscriber_receives_the_transforms_sent(pair):
    pair.warm_up()
    sent = [transform("camera_optical", pair.frame("face_0001"), 0.25),
            transform(pair.frame("face_0001"), pair.frame("gaze_0001"), 0.0)]
    pair.tf.send(sent)
    wanted = pair.frame("face_0001")

    def got():
        return [m for m in pair.received if m.transforms and m.transforms[0].child_frame_id == wanted]

    assert pair.spin_until(lambda: got())
    msgs = got()
    assert len(msgs) == 1
    msg = msgs[0]
    assert [(t.header.frame_id, t.child_frame_id) for t in msg.transforms] == [
        ("camera_optical", wanted), (wanted, pair.frame("gaze_0001"))]
    assert msg.transforms[0].transform.translation.x == 0.25
    assert msg.transforms[0].header.stamp == sent[0].header.stamp


@needs_no_tf2_ros
def test_sending_no_transforms_publishes_nothing(pair):
    pair.warm_up()
    pair.tf.send([])
    pair.tf.send([transform("camera_optical", pair.frame("after"), 1.0)])
    after = pair.frame("after")
    assert pair.spin_until(lambda: any(m.transforms and m.transforms[0].child_frame_id == after
                                                 for m in pair.received))
    # One reliable writer delivers in order: an empty message sent before `after` would have arrived before it.
    assert [m for m in pair.received if not m.transforms] == []
    assert pair.received[-1].transforms[0].child_frame_id == after
    assert [len(m.transforms) for m in pair.received] == [1] * len(pair.received)


@pytest.mark.skipif(not HAS_TF2_ROS, reason="tf2_ros is not installed here (ROS 2 from PyPI wheels has none)")
def test_with_tf2_ros_it_uses_the_transform_broadcaster(pair):
    assert pair.tf.backend == "tf2_ros"
