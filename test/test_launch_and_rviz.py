"""launch/headpose.launch.py and config/headpose.rviz, checked without ROS's launch (not on PyPI).

Where `launch_ros` is installed (a real ROS 2), the launch description is also built for real.
"""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "headpose.launch.py"


def declared_arguments(tree):
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
    }


def test_launch_file_declares_the_documented_arguments():
    tree = ast.parse(LAUNCH.read_text())
    assert {"image", "camera_info", "params_file", "backend", "namespace", "use_rviz"} <= declared_arguments(tree)
    source = LAUNCH.read_text()
    assert 'executable="headpose_node"' in source and '"config", "headpose.yaml"' in source
    assert 'remappings=[("image", LaunchConfiguration("image"))' in source


def test_launch_description_builds_where_launch_ros_exists():
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI; built only on a real ROS 2 install")
    import importlib.util

    spec = importlib.util.spec_from_file_location("headpose_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.generate_launch_description().entities) >= 8


def test_rviz_config_shows_image_tf_markers_and_the_debug_image():
    from headpose_ros.ros.markers import NAMESPACES

    doc = yaml.safe_load((ROOT / "config" / "headpose.rviz").read_text())
    displays = {d["Name"]: d for d in doc["Visualization Manager"]["Displays"]}
    assert displays["TF"]["Show Names"] is True
    assert displays["Camera image"]["Topic"]["Reliability Policy"] == "Best Effort"
    markers = displays["Heads and attention"]
    assert markers["Class"] == "rviz_default_plugins/MarkerArray"
    assert markers["Topic"]["Value"] == "/headpose_node/markers" and set(markers["Namespaces"]) == set(NAMESPACES)
    assert displays["Debug image"]["Topic"]["Value"] == "/headpose_node/debug_image"
    assert doc["Visualization Manager"]["Global Options"]["Fixed Frame"] == "camera_link"
