"""launch/headpose.launch.py and config/headpose.rviz, checked without ROS's launch (not on PyPI).

Where `launch_ros` is installed (a real ROS 2), the launch description is also built for real.
"""

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch" / "headpose.launch.py"


def declared_arguments(launch_file: Path) -> set[str]:
    """The names in the launch file's ARGUMENTS table (read without importing launch)."""
    tree = ast.parse(launch_file.read_text())
    table = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", "") == "ARGUMENTS")
    return {entry.elts[0].value for entry in table.elts}


def test_launch_files_declare_the_documented_arguments_and_plan_through_launch_plan():
    single = declared_arguments(LAUNCH)
    assert {"image", "camera_info", "params_file", "backend", "namespace", "node_name", "lifecycle",
            "image_rotation", "id_prefix", "ros4hri", "use_rviz", "rviz_config"} == single
    multi = declared_arguments(LAUNCH.parent / "multi_camera.launch.py")
    assert {"cameras_file", "params_file", "lifecycle", "backend", "use_rviz"} <= multi
    for launch_file, plan in ((LAUNCH, "plan_single_camera"), (LAUNCH.parent / "multi_camera.launch.py",
                                                              "plan_cameras")):
        source = launch_file.read_text()
        # Every decision is the plan's, made in one OpaqueFunction before any action starts.
        assert f"{plan}(args, " in source and "OpaqueFunction(function=_setup)" in source
        assert "Node(" not in source
    from headpose_ros.ros.launch_plan import MIRRORED

    assert set(MIRRORED) <= single and set(MIRRORED) <= multi


@pytest.mark.parametrize("launch_file", ["headpose.launch.py", "multi_camera.launch.py"])
def test_launch_description_builds_where_launch_ros_exists(launch_file):
    pytest.importorskip("launch_ros", reason="launch_ros is not on PyPI; built only on a real ROS 2 install")
    import importlib.util

    spec = importlib.util.spec_from_file_location("headpose_launch", LAUNCH.parent / launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.generate_launch_description().entities) == len(module.ARGUMENTS) + 1


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
