"""ros.launch_plan: what the launch files start, decided and checked before anything starts.

ROS 2's launch is not on PyPI, so the launch files' decisions live in this ROS-free module and are tested
here; where launch_ros exists, test_launch_and_rviz.py also builds the launch descriptions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from headpose_ros.ros.launch_plan import (LaunchPlanError, flatten, plan_cameras, plan_single_camera,
                                          read_cameras)

ROOT = Path(__file__).resolve().parents[1]
PARAMS = str(ROOT / "config" / "headpose.yaml")
RVIZ = str(ROOT / "config" / "headpose.rviz")


def declared(launch_file: str) -> set[str]:
    tree = ast.parse((ROOT / "launch" / launch_file).read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    return {entry.elts[0].value for entry in table.elts}


def defaults(launch_file: str) -> dict[str, str]:
    """The launch configurations a launch without arguments has (share paths pointed at the source tree)."""
    tree = ast.parse((ROOT / "launch" / launch_file).read_text())
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "ARGUMENTS")
    out = {}
    for entry in table.elts:
        name, default = entry.elts[0].value, entry.elts[1]
        out[name] = default.value if isinstance(default, ast.Constant) else None
    out.update(params_file=PARAMS, rviz_config=RVIZ)
    if "cameras_file" in out:
        out["cameras_file"] = str(ROOT / "config" / "cameras.yaml")
    return out


def single(**given) -> dict:
    return {**defaults("headpose.launch.py"), **given}


SINGLE = declared("headpose.launch.py")
MULTI = declared("multi_camera.launch.py")


def test_the_default_launch_is_one_node_with_the_params_file_alone():
    plan = plan_single_camera(single(), SINGLE, rviz_available=True)
    (node,) = plan.nodes
    assert (node.fully_qualified_name, node.executable) == ("/headpose_node", "headpose_node")
    assert node.params_files == [PARAMS] and node.overrides == {}  # before: backend always overrode the file
    assert (node.image, node.camera_info) == ("/camera/image_raw", "/camera/camera_info")
    assert plan.rviz_config is None and plan.warnings == []


def test_mirrored_arguments_override_the_params_file_only_when_given():
    plan = plan_single_camera(single(backend="hopenet", image_rotation="90", ros4hri="true", id_prefix="''"),
                              SINGLE, rviz_available=True)
    assert plan.nodes[0].overrides == {"backend": "hopenet", "image_rotation": 90, "ros4hri.enabled": True,
                                       "tracking.id_prefix": ""}


def test_a_misspelled_argument_is_named_with_the_nearest_one():
    plan = plan_single_camera(single(backnd="hopenet"), SINGLE, rviz_available=True)
    assert plan.warnings == ["launch argument 'backnd' is not one of this launch file's and is ignored; did you "
                             "mean 'backend'?"]


def test_rviz_missing_is_a_warning_and_no_rviz_never_a_failure_after_the_node_started():
    plan = plan_single_camera(single(use_rviz="true"), SINGLE, rviz_available=False)
    assert plan.rviz_config is None and len(plan.nodes) == 1
    assert plan.warnings == ["use_rviz:=true but rviz2 is not installed (sudo apt install ros-$ROS_DISTRO-rviz2): "
                             "starting without RViz"]
    assert plan_single_camera(single(use_rviz="true"), SINGLE, rviz_available=True).rviz_config == RVIZ


def test_rviz_shows_the_topics_of_a_renamed_node():
    plan = plan_single_camera(single(use_rviz="true", namespace="front"), SINGLE, rviz_available=True)
    text = Path(plan.rviz_config).read_text()
    Path(plan.rviz_config).unlink()
    assert "/front/headpose_node/markers" in text and "Value: /headpose_node/" not in text


@pytest.mark.parametrize("content, fragment", [
    (None, "does not exist"),
    ("headpose_node:\n  ros__parameters: [unclosed\n", "is not valid YAML"),
    ("backend: hopenet\n", "is not a ROS 2 params file"),
])
def test_a_missing_or_broken_params_file_stops_the_launch_before_anything_starts(tmp_path, content, fragment):
    path = tmp_path / "params.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(LaunchPlanError, match=fragment):
        plan_single_camera(single(params_file=str(path)), SINGLE, rviz_available=True)


def test_lifecycle_starts_the_managed_executable():
    plan = plan_single_camera(single(lifecycle="true"), SINGLE, rviz_available=True)
    assert plan.nodes[0].executable == "headpose_lifecycle_node"
    with pytest.raises(LaunchPlanError, match="must be true or false"):
        plan_single_camera(single(lifecycle="maybe"), SINGLE, rviz_available=True)


def test_the_shipped_cameras_file_gives_one_node_per_camera_in_its_namespace():
    plan = plan_cameras({**defaults("multi_camera.launch.py"), "backend": "fusion"}, MULTI, rviz_available=False)
    names = [n.fully_qualified_name for n in plan.nodes]
    assert names == ["/head_camera/headpose_node", "/chest_camera/headpose_node"]
    assert plan.nodes[0].image == "/head_camera/color/image_raw"
    assert plan.nodes[0].overrides == {"backend": "fusion"}
    assert plan.nodes[1].overrides == {"backend": "fusion", "image_rotation": 0}


@pytest.mark.parametrize("content, fragment", [
    ("cameras: []\n", "expected 'cameras:' with a list"),
    ("cameras:\n  - {name: a, image: /a}\n", "'camera_info' must be a non-empty string"),
    ("cameras:\n  - {name: 1cam, image: /a, camera_info: /b}\n", "must be letters, digits and '_'"),
    ("cameras:\n  - {name: a, image: /a, camera_info: /b, topic: /c}\n", "unknown key(s) topic"),
    ("cameras:\n  - {name: a, image: /a, camera_info: /b}\n  - {name: a, image: /c, camera_info: /d}\n",
     "camera names must be unique: a"),
])
def test_mistakes_in_the_cameras_file_are_named(tmp_path, content, fragment):
    path = tmp_path / "cameras.yaml"
    path.write_text(content)
    with pytest.raises(LaunchPlanError) as error:
        read_cameras(str(path))
    assert fragment in str(error.value)


def test_nested_camera_parameters_become_dotted_names():
    assert flatten({"tracking": {"min_hits": 2, "id_style": "random"}, "backend": "hopenet"}) == {
        "tracking.min_hits": 2, "tracking.id_style": "random", "backend": "hopenet"}


def test_every_mirrored_argument_and_camera_parameter_is_a_real_setting():
    from headpose_ros.core.config import definitions
    from headpose_ros.ros.launch_plan import MIRRORED
    from headpose_ros.ros.parameters import NodeConfig

    names = set(definitions()) | set(definitions(NodeConfig))
    assert set(MIRRORED.values()) <= names
    for camera in read_cameras(str(ROOT / "config" / "cameras.yaml")):
        assert set(flatten(camera.get("parameters") or {})) <= names
