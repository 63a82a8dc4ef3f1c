"""Publishes transforms on /tf: tf2_ros's broadcaster where installed, an equivalent publisher where not."""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# tf2_ros's TransformBroadcaster publishes with this profile (reliable, volatile, depth 100).
TF_QOS = QoSProfile(
    depth=100,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


class TfPublisher:
    """Sends lists of geometry_msgs/TransformStamped on /tf.

    `backend` says which implementation is in use ("tf2_ros" or "tf2_msgs"),
    for the start-up log.
    """

    def __init__(self, node: Node):
        try:
            from tf2_ros import TransformBroadcaster
        except ImportError:
            # PyPI ROS has no tf2_ros: publish the same message with the same QoS ourselves.
            from tf2_msgs.msg import TFMessage

            publisher = node.create_publisher(TFMessage, "/tf", TF_QOS)
            self._send = lambda transforms: publisher.publish(TFMessage(transforms=transforms))
            self.backend = "tf2_msgs"
        else:
            broadcaster = TransformBroadcaster(node, qos=TF_QOS)
            self._send = broadcaster.sendTransform
            self.backend = "tf2_ros"

    def send(self, transforms: list) -> None:
        if transforms:
            self._send(transforms)
