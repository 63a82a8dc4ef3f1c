"""What launch/headpose.launch.py and launch/multi_camera.launch.py start, decided before anything starts.

The launch files only declare their arguments and hand them here (plan_single_camera, plan_cameras): the plan
says which nodes to start with which parameters and remappings, whether RViz can start, and what to warn about.
Every check happens in the plan, so a mistake stops the launch before any process runs (launch does not stop
the processes it already started when a later action fails). launch_actions() turns a plan into launch_ros
actions; it is the only part that needs ROS 2's launch, which is not on PyPI.
"""

from __future__ import annotations

import difflib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Launch arguments that mirror a params-file setting: applied only when given (not empty).
MIRRORED = {"backend": "backend", "image_rotation": "image_rotation", "id_prefix": "tracking.id_prefix",
            "ros4hri": "ros4hri.enabled"}
NODE_NAME = "headpose_node"
EXECUTABLES = {False: "headpose_node", True: "headpose_lifecycle_node"}
CAMERA_KEYS = ("name", "image", "camera_info", "parameters")
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class LaunchPlanError(ValueError):
    """The launch cannot go ahead; the message says why and what to change."""


@dataclass
class NodePlan:
    """One headpose_node: its name and namespace, topics, params files (in order) and overrides on top."""

    name: str
    namespace: str
    image: str
    camera_info: str
    params_files: list[str]
    overrides: dict = field(default_factory=dict)
    lifecycle: bool = False

    @property
    def fully_qualified_name(self) -> str:
        return "/".join(["", *[t for t in self.namespace.split("/") if t], self.name])

    @property
    def executable(self) -> str:
        return EXECUTABLES[self.lifecycle]


@dataclass
class LaunchPlan:
    nodes: list[NodePlan]
    rviz_config: str | None = None  # an RViz configuration to start RViz with, None: no RViz
    warnings: list[str] = field(default_factory=list)


def parse_bool(name: str, text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off", ""):
        return False
    raise LaunchPlanError(f"launch argument {name}:={text!r} must be true or false")


def unknown_arguments(given: dict[str, str], declared: set[str]) -> list[str]:
    """One warning per launch argument that the launch file does not declare, with the nearest declared name."""
    warnings = []
    for name in sorted(set(given) - declared):
        guess = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else f"; the arguments are: {', '.join(sorted(declared))}"
        warnings.append(f"launch argument '{name}' is not one of this launch file's and is ignored{hint}")
    return warnings


def checked_params_file(path: str) -> str:
    """`path` if it is a readable YAML params file (a mapping of node keys), else LaunchPlanError."""
    if not path:
        raise LaunchPlanError("params_file is empty: give a params file (config/headpose.yaml documents them all)")
    file = Path(path).expanduser()
    if not file.is_file():
        raise LaunchPlanError(f"params_file '{path}' does not exist")
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LaunchPlanError(f"params_file '{path}' is not valid YAML ({first})") from None
    if not isinstance(doc, dict) or not all(isinstance(v, dict) and "ros__parameters" in v for v in doc.values()):
        raise LaunchPlanError(f"params_file '{path}' is not a ROS 2 params file (node keys, each with "
                              "ros__parameters: ...)")
    return str(file)


def mirrored_overrides(args: dict[str, str]) -> dict:
    """The params-file settings given as launch arguments (empty ones are not given), typed as YAML reads them."""
    overrides = {}
    for argument, setting_name in MIRRORED.items():
        text = args.get(argument, "")
        if str(text).strip() == "":
            continue
        overrides[setting_name] = parse_bool(argument, text) if setting_name == "ros4hri.enabled" else \
            _yaml_scalar(text)
    return overrides


def _yaml_scalar(text: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def rviz(args: dict[str, str], rviz_available: bool, node: NodePlan, warnings: list[str]) -> str | None:
    """The RViz configuration to start RViz with (the node's topics filled in), or None; a warning when RViz was
    asked for but is not installed."""
    if not parse_bool("use_rviz", args.get("use_rviz", "false")):
        return None
    if not rviz_available:
        warnings.append("use_rviz:=true but rviz2 is not installed (sudo apt install ros-$ROS_DISTRO-rviz2): "
                        "starting without RViz")
        return None
    config = Path(args["rviz_config"]).expanduser()
    if not config.is_file():
        raise LaunchPlanError(f"rviz_config '{config}' does not exist")
    text = config.read_text(encoding="utf-8")
    default = f"/{NODE_NAME}/"
    if node.fully_qualified_name + "/" == default or default not in text:
        return str(config)
    # The shipped configuration names /headpose_node/...: point it at this node's topics.
    fd, name = tempfile.mkstemp(prefix="headpose_", suffix=".rviz")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text.replace(default, node.fully_qualified_name + "/"))
    return name


def plan_single_camera(args: dict[str, str], declared: set[str], rviz_available: bool) -> LaunchPlan:
    """headpose.launch.py: one node on one camera. args: every launch configuration, declared or not."""
    warnings = unknown_arguments(args, declared)
    node = NodePlan(name=args.get("node_name") or NODE_NAME, namespace=args.get("namespace", ""),
                    image=args["image"], camera_info=args["camera_info"],
                    params_files=[checked_params_file(args["params_file"])], overrides=mirrored_overrides(args),
                    lifecycle=parse_bool("lifecycle", args.get("lifecycle", "false")))
    return LaunchPlan([node], rviz(args, rviz_available, node, warnings), warnings)


def plan_cameras(args: dict[str, str], declared: set[str], rviz_available: bool) -> LaunchPlan:
    """multi_camera.launch.py: one node per camera of the cameras file, each in the camera's namespace."""
    warnings = unknown_arguments(args, declared)
    params_file = checked_params_file(args["params_file"])
    common = mirrored_overrides(args)
    lifecycle = parse_bool("lifecycle", args.get("lifecycle", "false"))
    nodes = []
    for camera in read_cameras(args["cameras_file"]):
        overrides = {**common, **flatten(camera.get("parameters") or {})}
        nodes.append(NodePlan(name=NODE_NAME, namespace="/" + camera["name"], image=camera["image"],
                              camera_info=camera["camera_info"], params_files=[params_file], overrides=overrides,
                              lifecycle=lifecycle))
    return LaunchPlan(nodes, rviz(args, rviz_available, nodes[0], warnings), warnings)


def read_cameras(path: str) -> list[dict]:
    """The cameras of a cameras file (config/cameras.yaml documents it), checked; LaunchPlanError says what is
    wrong and where."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise LaunchPlanError(f"cameras_file '{path}' does not exist")
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "YAMLError"
        raise LaunchPlanError(f"cameras_file '{path}' is not valid YAML ({first})") from None
    cameras = doc.get("cameras") if isinstance(doc, dict) else None
    if not isinstance(cameras, list) or not cameras:
        raise LaunchPlanError(f"cameras_file '{path}': expected 'cameras:' with a list of cameras")
    names = []
    for k, camera in enumerate(cameras):
        where = f"cameras_file '{path}', camera {k + 1}"
        if not isinstance(camera, dict):
            raise LaunchPlanError(f"{where}: expected name, image and camera_info")
        unknown = sorted(set(camera) - set(CAMERA_KEYS))
        if unknown:
            raise LaunchPlanError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} (the keys are "
                                  f"{', '.join(CAMERA_KEYS)})")
        for key in ("name", "image", "camera_info"):
            if not isinstance(camera.get(key), str) or not camera[key].strip():
                raise LaunchPlanError(f"{where}: '{key}' must be a non-empty string")
        if not _TOKEN.fullmatch(camera["name"]):
            raise LaunchPlanError(f"{where}: name '{camera['name']}' must be letters, digits and '_', starting "
                                  "with a letter (it becomes the node's namespace and its TF frames' prefix)")
        if camera.get("parameters") is not None and not isinstance(camera["parameters"], dict):
            raise LaunchPlanError(f"{where}: 'parameters' must be a mapping of parameter names to values")
        names.append(camera["name"])
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LaunchPlanError(f"cameras_file '{path}': camera names must be unique: {', '.join(duplicates)}")
    return cameras


def flatten(values: dict, prefix: str = "") -> dict:
    """{'tracking': {'min_hits': 2}} -> {'tracking.min_hits': 2}, as a params file's nesting names parameters."""
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def rviz_installed() -> bool:
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    except ImportError:
        return False
    try:
        get_package_share_directory("rviz2")
    except PackageNotFoundError:
        return False
    return True


def launch_actions(plan: LaunchPlan) -> list:
    """The launch_ros actions of a plan, its warnings logged first."""
    import launch.logging
    from launch_ros.actions import LifecycleNode, Node

    log = launch.logging.get_logger("headpose_ros.launch")
    for warning in plan.warnings:
        log.warning(warning)
    actions = []
    for node in plan.nodes:
        kind = LifecycleNode if node.lifecycle else Node
        actions.append(kind(package="headpose_ros", executable=node.executable, name=node.name,
                            namespace=node.namespace, output="screen",
                            parameters=[*node.params_files, *([node.overrides] if node.overrides else [])],
                            remappings=[("image", node.image), ("camera_info", node.camera_info)]))
        log.info(f"{node.fully_qualified_name}: {node.image} + {node.camera_info}"
                 + (f", overriding {sorted(node.overrides)}" if node.overrides else "")
                 + (" (managed: configure and activate it with ros2 lifecycle set)" if node.lifecycle else ""))
    if plan.rviz_config:
        actions.append(Node(package="rviz2", executable="rviz2", arguments=["-d", plan.rviz_config], output="screen"))
    return actions
