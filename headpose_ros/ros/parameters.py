"""The node's ROS parameters, derived from the settings' one definition (core.config).

Every engine setting and every node setting is one parameter, named by its
dotted path, with its description, type, range and read-only flag taken from
its `setting()` definition. Live settings (core.config.LIVE_SETTINGS) can be
changed while the node runs; the others are declared read-only, so a change
is refused with that reason.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.parameter import Parameter

from ..core.config import (TARGET_PARAMETER_KEYS, EngineConfig, Setting, Settings, TargetConfig, leaves, setting,
                           with_values)

RELIABILITIES = ("best_effort", "reliable")
TRANSPORTS = ("raw", "compressed")


class StartupError(RuntimeError):
    """The node cannot start; the message says why and what fixes it."""


@dataclass(frozen=True)
class Ros4HriConfig(Settings):
    enabled: bool = setting(False, "Also publish the ROS4HRI (REP-155) face topics: /humans/faces/tracked, "
                            "/humans/faces/<id>/roi, cropped and aligned, and /humans/interactions/gazing (hri_msgs).")
    face_image_size: int = setting(128, "Side in pixels of the /cropped and /aligned face images (REP-155's "
                                   "/humans/faces/width and height default).", low=16, high=1024)


@dataclass(frozen=True)
class NodeConfig(Settings):
    """The node's own settings (the engine's are core.config.EngineConfig); all read at start-up."""

    camera_frame: str = setting("", "Parent frame of face_<id>; empty uses the image's header.frame_id (the camera "
                                "optical frame).")
    publish_tf: bool = setting(True, "Publish face_<id> and gaze_<id> on /tf.")
    face_frame_prefix: str = setting("face_", "TF frame name prefix of each face (REP-155: face_).")
    gaze_frame_prefix: str = setting("gaze_", "TF frame name prefix of each gaze frame (REP-155: gaze_).")
    diagnostics_period: float = setting(1.0, "Seconds between /diagnostics messages.", low=0.0, high=3600.0,
                                        low_open=True)
    wait_warning_period: float = setting(5.0, "Seconds without input before the node says what it is waiting for.",
                                         low=0.0, high=3600.0, low_open=True)
    image_reliability: str = setting("best_effort", "QoS reliability of the image and camera_info subscriptions: "
                                     "best_effort (works with every publisher) or reliable (only with reliable "
                                     "publishers).", choices=RELIABILITIES)
    publish_markers: bool = setting(True, "Publish ~/markers (visualization_msgs/MarkerArray) for RViz.")
    image_transport: str = setting("raw", "raw: subscribe to image (sensor_msgs/Image); compressed: to "
                                   "image/compressed (sensor_msgs/CompressedImage, JPEG or PNG, decoded with "
                                   "OpenCV).", choices=TRANSPORTS)
    fallback_horizontal_fov_deg: float = setting(0.0, "Opt-in guessed intrinsics: without a usable CameraInfo, "
                                                 "assume an ideal camera of this horizontal field of view (deg) and "
                                                 "say so; 0 publishes no pose until a calibrated CameraInfo "
                                                 "arrives.", low=0.0, high=180.0, high_open=True, note="0: off")
    model_dir: str = setting("", "Directory holding the converted .onnx models, each with its .json manifest "
                             "beside it (a folder written by `headpose-ros prepare --export`); empty uses the asset "
                             "cache filled by `make setup` or `prepare --import`.")
    model_dir_unchecked: bool = setting(False, "Use the .onnx files of model_dir as they are, without checking "
                                        "them against their manifests (models converted some other way).")
    ros4hri: Ros4HriConfig = field(default_factory=Ros4HriConfig)


def descriptor(name: str, spec: Setting, default: Any, live: bool) -> ParameterDescriptor:
    """The ParameterDescriptor of one setting: description, type, range or choices, read-only unless live."""
    d = ParameterDescriptor(name=name, read_only=not live,
                            description=spec.description + ("" if live else " (read-only: restart the node to "
                                                                            "change it)"))
    d.type = _parameter_type(default).value
    if spec.range_text():
        d.additional_constraints = spec.range_text()
    closed = spec.low is not None and spec.high is not None and not (spec.low_open or spec.high_open)
    if closed and isinstance(default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)]
    elif closed and isinstance(default, int) and not isinstance(default, bool):
        d.integer_range = [IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=0)]
    return d


def _parameter_type(default: Any) -> Parameter.Type:
    if isinstance(default, tuple):
        # An empty tuple has no element type to infer: these are lists of names.
        return Parameter.Type.DOUBLE_ARRAY if default and isinstance(default[0], float) else Parameter.Type.STRING_ARRAY
    return Parameter.Type.from_parameter_value(default)


def declare(node, name: str, spec: Setting, default: Any, live: bool = False) -> Any:
    """Declare one parameter and return its value (tuples for arrays); a wrong type stops the start-up clearly."""
    desc = descriptor(name, spec, default, live)
    try:
        if default == ():
            return _declare_name_list(node, name, desc)
        # Typed by its default (as declare_parameter without a descriptor would be), so that
        # `-p publish_tf:=1` is refused instead of silently becoming an integer.
        value = node.declare_parameter(name, list(default) if isinstance(default, tuple) else default, desc).value
    except InvalidParameterTypeException as exc:
        expected = "list" if isinstance(default, tuple) else type(default).__name__
        raise StartupError(f"parameter '{name}': {exc} (expected a {expected})") from None
    except ParameterException as exc:  # a value outside the descriptor's range
        allowed = spec.range_text()
        raise StartupError(f"parameter '{name}': {exc}" + (f" (allowed: {allowed})" if allowed else "")) from None
    return tuple(value) if isinstance(default, tuple) else value


def given_parameters(node) -> dict:
    """The parameters given to the node (params files and -p, as rcl matched them to it): name -> Parameter.
    rclpy keeps them in Node._parameter_overrides and offers no public accessor."""
    return getattr(node, "_parameter_overrides", {})


def _declare_name_list(node, name: str, desc: ParameterDescriptor) -> tuple[str, ...]:
    """A list of names whose default is empty. rclpy types an empty list as a byte array, and a parameter
    declared by type alone stays unset (left out of `ros2 param dump` and of every get_parameters answer that
    names it), so it is declared with a value and dynamic typing, and its element type checked here."""
    desc.dynamic_typing = True
    override = given_parameters(node).get(name)  # `[]` in a params file arrives unset
    unset = override is not None and override.type_ == Parameter.Type.NOT_SET
    value = node.declare_parameter(name, [], desc, ignore_override=unset).value
    if value is None or (isinstance(value, (list, tuple)) and len(value) == 0) or isinstance(value, bytes):
        return ()
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise StartupError(f"parameter '{name}': {value!r} is not a list of names such as [screen, door] (expected a list)")
    return tuple(value)


def declare_all(node, config: Settings, live: frozenset[str] = frozenset()) -> Settings:
    """Declare a parameter for every setting of `config` (its values are the defaults); the config they give."""
    values = {name: declare(node, name, spec, default, name in live) for name, default, spec in leaves(config)}
    return with_values(config, values)


def declare_targets(node, names: tuple[str, ...]) -> tuple[TargetConfig, ...]:
    """The attention targets named in attention.target_names, each from attention.targets.<name>.*."""
    fields = {name: (value, spec) for name, value, spec in leaves(TargetConfig()) if name in TARGET_PARAMETER_KEYS}
    given = set(given_parameters(node))
    targets = []
    for target in names:
        keys = [f"attention.targets.{target}.{key}" for key in fields]
        if not given & set(keys):
            # Every field at its default would put the target at the camera's origin, without a word.
            raise StartupError(f"attention.target_names names '{target}', but attention.targets.{target} is not "
                               f"given: set its frame and offset (e.g. attention.targets.{target}.frame: map, "
                               f"offset: [1.0, 0.0, 0.75]), or remove it from target_names")
        values = {key: declare(node, name, spec, default) for name, (key, (default, spec)) in zip(keys, fields.items())}
        targets.append(TargetConfig(name=target, **values))
    return tuple(targets)


def live_change(config: EngineConfig, params, apply: Callable[[EngineConfig], None],
                log) -> tuple[EngineConfig, SetParametersResult]:
    """Apply a set_parameters request to the engine's settings: (the config now in force, the result).

    Names that are not engine settings are accepted untouched (rclpy already
    refused read-only ones). `apply` raises (ConfigError, ValueError, ...) to refuse.
    """
    names = {name for name, _, _ in leaves(config)}
    values = {p.name: p.value for p in params if p.name in names}
    if not values:
        return config, SetParametersResult(successful=True)
    try:
        changed = with_values(config, values)
        apply(changed)
    except (KeyError, TypeError, ValueError) as exc:
        log.warn(f"parameter change refused: {exc}")
        return config, SetParametersResult(successful=False, reason=str(exc))
    log.info("parameters changed: " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return changed, SetParametersResult(successful=True)


# -- mistakes in what the node was given ---------------------------------------------------------

def unknown_parameters(given: list[str], declared: set[str], target_names: tuple[str, ...]) -> list[str]:
    """One warning per parameter that was given (params file or -p) but that the node does not have, naming
    the nearest known name. ROS's own qos_overrides.* are left to rclpy."""
    leaf_to_names: dict[str, list[str]] = {}
    for name in declared:
        leaf_to_names.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    warnings = []
    for name in sorted(set(given) - declared):
        if name.startswith("qos_overrides."):
            continue
        parts = name.split(".")
        if name.startswith("attention.targets.") and len(parts) >= 4 and parts[2] not in target_names:
            warnings.append(f"parameter '{name}' is ignored: '{parts[2]}' is not in attention.target_names "
                            f"{list(target_names)}")
            continue
        guess = difflib.get_close_matches(name, declared, n=1, cutoff=0.75)
        if not guess:
            leaves_ = difflib.get_close_matches(parts[-1], leaf_to_names, n=1, cutoff=0.75)
            guess = sorted(leaf_to_names[leaves_[0]])[:1] if leaves_ else []
        hint = f"; did you mean '{guess[0]}'?" if guess else "; `ros2 param list` shows the node's parameters"
        warnings.append(f"unknown parameter '{name}' is ignored{hint}")
    return warnings


def ros_params_files(argv: list[str]) -> list[str]:
    """The --params-file paths among the ROS arguments of a command line (inside --ros-args ... [--])."""
    files, in_ros = [], False
    for i, arg in enumerate(argv):
        if arg == "--ros-args":
            in_ros = True
        elif arg == "--":
            in_ros = False
        elif in_ros and arg == "--params-file" and i + 1 < len(argv):
            files.append(argv[i + 1])
    return files


def node_key_matches(key: str, fully_qualified_name: str) -> bool:
    """Whether a params file's top-level key applies to the node (rcl's rules: '/' is implied in front,
    '*' is one name token, '**' any number of them)."""
    tokens = [t for t in key.strip("/").split("/") if t]
    pattern = "".join("(/[^/]+)*" if t == "**" else "/[^/]+" if t == "*" else "/" + re.escape(t) for t in tokens)
    return re.fullmatch(pattern or "/", fully_qualified_name) is not None


def params_file_problems(paths: list[str], fully_qualified_name: str) -> list[str]:
    """One warning per params file none of whose node keys names this node (so none of it applies)."""
    problems = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue  # rcl refuses those before the node exists
        keys = [str(k) for k in doc] if isinstance(doc, dict) else []
        if keys and not any(node_key_matches(k, fully_qualified_name) for k in keys):
            problems.append(f"params file '{path}' applies to none of its nodes here: its keys {keys} do not name "
                            f"this node, {fully_qualified_name}; none of its parameters are used (a key is the "
                            "node's name, its '/namespace/name', or '/**' for every node)")
    return problems
