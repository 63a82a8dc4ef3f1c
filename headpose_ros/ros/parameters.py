"""The node's ROS parameters, derived from the settings' one definition (core.config).

Every engine setting and every node setting is one parameter, named by its
dotted path, with its description, type, range and read-only flag taken from
its `setting()` definition. Live settings (core.config.LIVE_SETTINGS) can be
changed while the node runs; the others are declared read-only, so a change
is refused with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

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
                             "beside it (a copy of a prepared cache's models folder); empty uses the asset cache "
                             "filled by `make setup`.")
    model_dir_unchecked: bool = setting(False, "Use the .onnx files of model_dir as they are, without checking "
                                        "them against their manifests (models converted some other way).")


def descriptor(name: str, spec: Setting, default: Any, live: bool) -> ParameterDescriptor:
    """The ParameterDescriptor of one setting: description, type, range or choices, read-only unless live."""
    d = ParameterDescriptor(name=name, read_only=not live,
                            description=spec.description + ("" if live else " (read-only: restart the node to "
                                                                            "change it)"))
    d.type = _parameter_type(default).value
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join(spec.choices)
    elif spec.range_text():
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
            value = node.declare_parameter(name, Parameter.Type.STRING_ARRAY, desc).value
            return tuple(value or ())
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


def declare_all(node, config: Settings, live: frozenset[str] = frozenset()) -> Settings:
    """Declare a parameter for every setting of `config` (its values are the defaults); the config they give."""
    values = {name: declare(node, name, spec, default, name in live) for name, default, spec in leaves(config)}
    return with_values(config, values)


def declare_targets(node, names: tuple[str, ...]) -> tuple[TargetConfig, ...]:
    """The attention targets named in attention.target_names, each from attention.targets.<name>.*."""
    fields = {name: (value, spec) for name, value, spec in leaves(TargetConfig()) if name in TARGET_PARAMETER_KEYS}
    targets = []
    for target in names:
        values = {key: declare(node, f"attention.targets.{target}.{key}", spec, default)
                  for key, (default, spec) in fields.items()}
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
