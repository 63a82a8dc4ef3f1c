"""ros.targets: the robot and the configured attention targets placed in the camera optical frame.

TargetResolver on a real in-process node. Targets in the camera's own frame
need no TF and work without tf2_ros; a target in any other frame needs
tf2_ros, and where it is missing (ROS 2 from PyPI wheels) the resolver
refuses to start with a message naming it.
"""

from __future__ import annotations

import importlib.util
import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402

from headpose_ros.core.attention import AttentionScene  # noqa: E402
from headpose_ros.core.config import AttentionConfig, TargetConfig, with_values  # noqa: E402
from headpose_ros.ros.targets import TargetError, TargetResolver  # noqa: E402

pytestmark = pytest.mark.ros

HAS_TF2_ROS = importlib.util.find_spec("tf2_ros") is not None
needs_no_tf2_ros = pytest.mark.skipif(HAS_TF2_ROS, reason="tf2_ros is installed: targets in other frames are "
                                                          "looked up with it instead of refused")
CAMERA = "targets_camera_optical_frame"


@pytest.fixture
def node(ros):
    n = Node(f"test_targets_{uuid.uuid4().hex[:8]}")
    yield n
    n.destroy_node()


def attention(**values) -> AttentionConfig:
    return with_values(AttentionConfig(), values)


def by_name(scene: AttentionScene) -> dict:
    return {t.name: t for t in scene.targets}


def test_camera_frame_targets_need_no_tf(node):
    config = attention(robot_offset=(0.0, -0.1, 0.05), target_names=("screen",),
                       targets=(TargetConfig("screen", "", (0.35, 0.0, 0.1), 10.0),))
    resolver = TargetResolver(node, config)
    assert resolver.backend == "camera frame only"
    assert resolver.buffer is None
    scene = resolver.resolve(CAMERA)
    assert isinstance(scene, AttentionScene)
    assert scene.problems == []
    assert scene.robot_gaze is None  # mutual gaze is off by default
    assert [t.name for t in scene.targets] == ["robot", "screen"]
    robot, screen = by_name(scene)["robot"], by_name(scene)["screen"]
    np.testing.assert_array_equal(robot.position, [0.0, -0.1, 0.05])
    assert robot.frame == CAMERA  # "" is the image's own frame
    assert robot.cone_half_angle_deg is None  # the default cone
    np.testing.assert_array_equal(screen.position, [0.35, 0.0, 0.1])
    assert screen.frame == CAMERA
    assert screen.cone_half_angle_deg == 10.0


def test_the_default_robot_is_the_camera_itself(node):
    scene = TargetResolver(node, AttentionConfig()).resolve(CAMERA)
    assert [t.name for t in scene.targets] == ["robot"]
    np.testing.assert_array_equal(scene.targets[0].position, [0.0, 0.0, 0.0])


def test_the_camera_frame_parameter_counts_as_the_cameras_own_frame(node):
    config = attention(robot_frame="head_camera_link", robot_offset=(0.0, 0.0, 0.3),
                       target_names=("screen",), targets=(TargetConfig("screen", "head_camera_link", (0.4, 0.0, 0.0)),))
    resolver = TargetResolver(node, config, camera_frame="head_camera_link")
    assert resolver.backend == "camera frame only"
    scene = resolver.resolve(CAMERA)
    assert scene.problems == []
    robot, screen = by_name(scene)["robot"], by_name(scene)["screen"]
    np.testing.assert_array_equal(robot.position, [0.0, 0.0, 0.3])
    np.testing.assert_array_equal(screen.position, [0.4, 0.0, 0.0])
    assert robot.frame == "head_camera_link" and screen.frame == "head_camera_link"


@pytest.mark.parametrize("axis, direction", [("z", [0.0, 0.0, 1.0]), ("x", [1.0, 0.0, 0.0])])
def test_mutual_gaze_in_the_camera_frame_looks_along_the_chosen_axis(node, axis, direction):
    resolver = TargetResolver(node, attention(mutual_gaze=True, robot_gaze_axis=axis))
    assert resolver.backend == "camera frame only"
    scene = resolver.resolve(CAMERA)
    np.testing.assert_array_equal(scene.robot_gaze.origin, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(scene.robot_gaze.direction, direction)


@needs_no_tf2_ros
def test_a_target_in_another_frame_without_tf2_ros_is_refused_naming_tf2_ros(node):
    config = attention(robot_frame="base_link", target_names=("door",),
                       targets=(TargetConfig("door", "map", (2.0, 0.0, 0.0)),))
    with pytest.raises(TargetError) as info:
        TargetResolver(node, config)
    message = str(info.value)
    assert message.startswith("attention targets in frame(s) base_link, map need tf2_ros")
    assert "tf2_ros is not installed" in message
    assert "apt install ros-$ROS_DISTRO-tf2-ros" in message
    assert isinstance(info.value, ValueError)


@needs_no_tf2_ros
def test_a_robot_gaze_frame_of_its_own_needs_tf2_ros_too(node):
    with pytest.raises(TargetError, match=r"^attention targets in frame\(s\) head_camera need tf2_ros"):
        TargetResolver(node, attention(mutual_gaze=True, robot_gaze_frame="head_camera"))
    # Without mutual gaze the robot's gaze frame is never looked up.
    assert TargetResolver(node, attention(robot_gaze_frame="head_camera")).backend == "camera frame only"


@needs_no_tf2_ros
def test_a_frame_other_than_the_camera_frame_parameter_is_foreign(node):
    config = attention(target_names=("lamp",), targets=(TargetConfig("lamp", "head_camera_link", (0.0, 0.0, 1.0)),))
    with pytest.raises(TargetError, match=r"frame\(s\) head_camera_link need tf2_ros"):
        TargetResolver(node, config, camera_frame="other_camera")


@pytest.mark.skipif(not HAS_TF2_ROS, reason="tf2_ros is not installed here (ROS 2 from PyPI wheels has none)")
def test_with_tf2_ros_a_target_in_another_frame_is_looked_up(node):
    config = attention(target_names=("door",), targets=(TargetConfig("door", "map", (2.0, 0.0, 0.0)),))
    resolver = TargetResolver(node, config)
    assert resolver.backend == "tf2_ros"
    scene = resolver.resolve(CAMERA)  # no transform published: the door is left out, with the reason
    assert [t.name for t in scene.targets] == ["robot"]
    assert len(scene.problems) == 1 and scene.problems[0].startswith(f"target 'door': no transform {CAMERA} <- map")
