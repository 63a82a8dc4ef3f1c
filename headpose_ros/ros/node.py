"""headpose_node: camera image + camera_info in, head poses out (HeadPoseArray, TF, diagnostics).

A thin adapter: it converts messages, calls the ROS-free HeadPoseEngine and
converts the result back. Topics (all remappable):

- ``image`` (sensor_msgs/Image, subscribed, best effort by default, keep last 1)
- ``camera_info`` (sensor_msgs/CameraInfo, subscribed, the same QoS)
- ``~/heads`` (headpose_ros/HeadPoseArray, published, reliable, depth 10)
- ``/tf`` (face_<id> and gaze_<id>, REP-155, stamped with the image stamp)
- ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, once per `diagnostics_period`)
- ``~/attention`` (headpose_ros/AttentionTargetArray: what each face attends, every image)
- ``~/attention_events`` (headpose_ros/AttentionEvent: a face's attended target changed)
- ``~/markers`` (visualization_msgs/MarkerArray: axes, gaze, cone, label, attended target)
- ``~/debug_image`` (sensor_msgs/Image, bgr8: the annotated input, drawn only while subscribed)
"""

from __future__ import annotations

import math
import sys
import time

import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from headpose_ros.msg import AttentionEvent, AttentionTargetArray, HeadPoseArray

from ..assets import AssetError
from ..core.attention import ROBOT, AttentionTracker
from ..core.camera import CameraModel, CameraModelError
from ..core.config import (BACKENDS, DETECTOR_MODELS, ENGINES, ID_STYLES, LIVE_SETTINGS, NETWORKS, EngineConfig,
                           leaves, with_values)
from ..core.engine import ConfigError, HeadPoseEngine, fit_camera_to_image
from ..core.inference import InferenceError
from ..core.visualization import annotate
from .diagnostics import PipelineStats, diagnostics_message
from .image_conversion import ImageConversionError, camera_from_info, compressed_to_rgb, image_to_rgb
from .markers import MarkerIds, marker_array
from .messages import attention_array, attention_event, face_transforms, head_pose_array
from .targets import GazeSpec, TargetError, TargetResolver, TargetSpec
from .tf_publisher import TfPublisher


def input_qos(reliability: str) -> QoSProfile:
    """Keep last 1: the newest frame only, so a slow frame never builds a backlog behind it."""
    return QoSProfile(
        depth=1,
        history=HistoryPolicy.KEEP_LAST,
        reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


_CHOICES = {"backend": BACKENDS, "detection.model": DETECTOR_MODELS, "tracking.id_style": ID_STYLES,
            "inference.engine": ENGINES, "hopenet.network": NETWORKS}
_UNIT_INTERVAL = ("detection.score_threshold", "detection.nms_iou_threshold", "landmarks.presence_threshold",
                  "tracking.iou_threshold")

# Settings of the node itself (the engine's come from EngineConfig): name -> (default, description).
NODE_PARAMETERS = {
    "camera_frame": ("", "Parent frame of face_<id>; empty uses the image's header.frame_id (the camera optical frame)."),
    "publish_tf": (True, "Publish face_<id> and gaze_<id> on /tf."),
    "face_frame_prefix": ("face_", "TF frame name prefix of each face (REP-155: face_)."),
    "gaze_frame_prefix": ("gaze_", "TF frame name prefix of each gaze frame (REP-155: gaze_)."),
    "diagnostics_period": (1.0, "Seconds between /diagnostics messages."),
    "wait_warning_period": (5.0, "Seconds without input before the node says what it is waiting for."),
    "image_reliability": ("best_effort", "QoS reliability of the image and camera_info subscriptions: best_effort "
                                         "(works with every publisher) or reliable (only with reliable publishers)."),
    "publish_markers": (True, "Publish ~/markers (visualization_msgs/MarkerArray) for RViz."),
    "image_transport": ("raw", "raw: subscribe to image (sensor_msgs/Image); compressed: to image/compressed "
                               "(sensor_msgs/CompressedImage, JPEG or PNG, decoded with OpenCV)."),
    "fallback_horizontal_fov_deg": (0.0, "Opt-in guessed intrinsics: without a usable CameraInfo, assume an ideal "
                                         "camera of this horizontal field of view (deg) and say so; 0 publishes no "
                                         "pose until a calibrated CameraInfo arrives."),
    "attention.robot_frame": ("", "TF frame of the robot as an attention target; empty: the camera's optical frame."),
    "attention.robot_offset": ([0.0, 0.0, 0.0], "Position (m) of the robot target in attention.robot_frame."),
    "attention.mutual_gaze": (False, "Report mutual gaze: needs the robot's own gaze (attention.robot_gaze_frame)."),
    "attention.robot_gaze_frame": ("", "Frame whose axis attention.robot_gaze_axis is where the robot looks; empty: "
                                       "the camera's optical frame."),
    "attention.robot_gaze_axis": ("z", "Looking axis of attention.robot_gaze_frame: z for optical frames, x for body "
                                       "frames (REP-103)."),
    "attention.target_names": ([], "Names of further targets; each is described by attention.targets.<name>.frame, "
                                   ".offset and .cone_half_angle_deg."),
}

# Per configured target: attention.targets.<name>.<key> -> (default, description).
TARGET_PARAMETERS = {
    "frame": ("", "TF frame of the target; empty: the camera's optical frame."),
    "offset": ([0.0, 0.0, 0.0], "Position (m) of the target in its frame."),
    "cone_half_angle_deg": (0.0, "The target's own cone half-angle (deg); 0: attention.cone_half_angle_deg."),
}


class StartupError(RuntimeError):
    """The node cannot start; the message says why and what fixes it."""


class HeadPoseNode(Node):
    def __init__(self, **kwargs):
        super().__init__("headpose_node", **kwargs)
        self.config = self._declare_engine_parameters()
        # The node's own settings are read at start-up: read-only, so a change is refused with that reason.
        p = {name: self._declare(name, default, ParameterDescriptor(description=description, read_only=True))
             for name, (default, description) in NODE_PARAMETERS.items()}
        self.camera_frame, self.publish_tf = p["camera_frame"], p["publish_tf"]
        self.face_prefix, self.gaze_prefix = p["face_frame_prefix"], p["gaze_frame_prefix"]
        self.wait_warning_period = float(p["wait_warning_period"])
        if p["image_reliability"] not in ("best_effort", "reliable"):
            raise StartupError(f"image_reliability must be best_effort or reliable, not '{p['image_reliability']}'")
        if p["image_transport"] not in ("raw", "compressed"):
            raise StartupError(f"image_transport must be raw or compressed, not '{p['image_transport']}'")
        self.fallback_fov = float(p["fallback_horizontal_fov_deg"])
        if not 0 <= self.fallback_fov < 180:
            raise StartupError(f"fallback_horizontal_fov_deg must be in [0, 180) (0: off), not {self.fallback_fov}")
        for name in ("diagnostics_period", "wait_warning_period"):
            if not p[name] > 0:
                raise StartupError(f"{name} must be > 0 seconds, not {p[name]}")
        qos = input_qos(p["image_reliability"])
        try:
            self.engine = HeadPoseEngine(self.config, log=self.get_logger().info)
        except (ConfigError, InferenceError, AssetError, OSError, ValueError) as exc:
            raise StartupError(str(exc)) from None

        self.stats = PipelineStats()
        self.camera = None  # the latest usable CameraModel
        self.camera_problem = "no CameraInfo received yet"
        self.camera_info_received = False
        self.camera_info_frame = ""
        self._started = time.monotonic()
        self._last_image_time: float | None = None
        self._last_heads = 0
        self._warned: dict[str, float] = {}  # message -> when it was last logged (_warn_each)

        self.heads_pub = self.create_publisher(HeadPoseArray, "~/heads", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.tf = TfPublisher(self) if self.publish_tf else None
        self._setup_attention(p)
        self.markers_pub = self.create_publisher(MarkerArray, "~/markers", 10) if p["publish_markers"] else None
        self.marker_ids = MarkerIds()
        self.debug_pub = self.create_publisher(Image, "~/debug_image", 2)
        self.info_sub = self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos)
        if p["image_transport"] == "compressed":
            # image_transport's naming: the (remapped) image topic with /compressed appended.
            topic = self.resolve_topic_name("image") + "/compressed"
            self.image_sub = self.create_subscription(CompressedImage, topic, self._on_compressed, qos)
        else:
            self.image_sub = self.create_subscription(Image, "image", self._on_image, qos)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # Health is judged in real time, also under use_sim_time (a paused or absent /clock
        # must not silence the diagnostics and the waiting warnings).
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(float(p["diagnostics_period"]), self._publish_diagnostics, clock=steady)
        self.create_timer(self.wait_warning_period, self._check_input, clock=steady)

        models = ", ".join(f"{k}: {v}" for k, v in self.engine.describe().items())
        self.get_logger().info(
            f"ready: image '{self.image_sub.topic_name}', camera_info '{self.info_sub.topic_name}', "
            f"heads '{self.heads_pub.topic_name}', tf via {self.tf.backend if self.tf else 'disabled'}; {models}"
        )

    # -- parameters -------------------------------------------------------------------------

    def _declare_engine_parameters(self) -> EngineConfig:
        """One parameter per engine setting, with its documentation as description.

        The LIVE_SETTINGS can be changed while the node runs (see _on_set_parameters);
        the others choose models and runtimes and are read-only.
        """
        defaults = EngineConfig()
        values = {}
        for name, default, description in leaves(defaults):
            live = name in LIVE_SETTINGS
            descriptor = ParameterDescriptor(
                description=description + ("" if live else " (read-only: restart the node to change it)"),
                read_only=not live)
            if name in _CHOICES:
                descriptor.additional_constraints = "one of: " + ", ".join(_CHOICES[name])
            if name in _UNIT_INTERVAL:
                descriptor.floating_point_range = [FloatingPointRange(from_value=0.0, to_value=1.0, step=0.0)]
            values[name] = self._declare(name, default, descriptor)
        # Value checks beyond the descriptors (choices, ranges) happen in EngineConfig.problems().
        return with_values(defaults, values)

    def _declare(self, name: str, default, descriptor: ParameterDescriptor):
        """Declare one parameter and return its value; a value of the wrong type stops the start-up clearly."""
        try:
            if default == []:
                # An empty list has no element type to infer: these are lists of names.
                descriptor.type = Parameter.Type.STRING_ARRAY.value
                value = self.declare_parameter(name, Parameter.Type.STRING_ARRAY, descriptor).value
                return list(value or [])
            # Typed by its default (as declare_parameter without a descriptor would be), so that
            # `-p publish_tf:=1` is refused instead of silently becoming an integer.
            descriptor.type = Parameter.Type.from_parameter_value(default).value
            return self.declare_parameter(name, default, descriptor).value
        except ParameterException as exc:
            raise StartupError(f"parameter '{name}': {exc} (expected a {type(default).__name__})") from None

    def _setup_attention(self, p: dict) -> None:
        """Targets from the parameters, the tracker, and the attention publishers (when attention.enabled)."""
        self.attention = None
        if not self.config.attention.enabled:
            return
        targets = []
        for name in p["attention.target_names"]:
            values = {key: self._declare(f"attention.targets.{name}.{key}", default,
                                         ParameterDescriptor(description=description, read_only=True))
                      for key, (default, description) in TARGET_PARAMETERS.items()}
            targets.append(TargetSpec(name, values["frame"], tuple(values["offset"]), values["cone_half_angle_deg"]))
        robot = TargetSpec(ROBOT, p["attention.robot_frame"], tuple(p["attention.robot_offset"]))
        gaze = GazeSpec(p["attention.robot_gaze_frame"], p["attention.robot_gaze_axis"]) if p["attention.mutual_gaze"] else None
        try:
            self.targets = TargetResolver(self, robot, targets, gaze, self.camera_frame)
        except TargetError as exc:
            raise StartupError(str(exc)) from None
        self.attention = AttentionTracker(self.config.attention)
        self.attention_pub = self.create_publisher(AttentionTargetArray, "~/attention", 10)
        self.events_pub = self.create_publisher(AttentionEvent, "~/attention_events", 10)
        self.get_logger().info(
            f"attention: robot at '{robot.frame or 'the camera frame'}' {list(robot.offset)}, targets "
            f"{[t.name for t in targets] or 'none'}, other faces {'too' if self.config.attention.faces_as_targets else 'not'}; "
            f"frames via {self.targets.backend}")

    def _warn_each(self, message: str, period: float = 5.0) -> None:
        """A warning throttled per message, not per call site: a second kind of problem is never hidden by the first."""
        now = time.monotonic()
        if now - self._warned.get(message, -math.inf) >= period:
            self._warned[message] = now
            self.get_logger().warn(message)

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Apply changes of the LIVE_SETTINGS at once, or refuse them with the reason (read-only ones never get here)."""
        names = {name for name, _, _ in leaves(self.config)}
        values = {p.name: p.value for p in params if p.name in names}
        if not values:
            return SetParametersResult(successful=True)
        try:
            config = with_values(self.config, values)
            self.engine.apply_settings(config)
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            self.get_logger().warn(f"parameter change refused: {exc}")
            return SetParametersResult(successful=False, reason=str(exc))
        self.config = config
        if self.attention is not None:
            self.attention.settings = config.attention
        self.get_logger().info("parameters changed: " + ", ".join(f"{k}={v}" for k, v in values.items()))
        return SetParametersResult(successful=True)

    # -- callbacks ----------------------------------------------------------------------------

    def _on_camera_info(self, msg: CameraInfo) -> None:
        self.camera_info_received = True
        camera = camera_from_info(
            msg.k, msg.d, msg.width, msg.height, msg.distortion_model, msg.header.frame_id,
            msg.binning_x, msg.binning_y, msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height,
        )
        problems = camera.problems()
        if problems:
            # Keep the last good intrinsics out of use too: they no longer describe this camera.
            self.camera, self.camera_problem = None, "; ".join(problems)
            self._warn_each(f"refusing camera info on '{self.info_sub.topic_name}': {self.camera_problem}; "
                            "no poses until a calibrated CameraInfo arrives")
            return
        self.camera, self.camera_problem = camera, ""
        self.camera_info_frame = msg.header.frame_id

    def _on_image(self, msg: Image) -> None:
        self._on_input(msg.header, lambda: image_to_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._on_input(msg.header, lambda: compressed_to_rgb(msg.format, msg.data))

    def _camera_for(self, width: int, height: int, frame_id: str):
        """The intrinsics to use for this image: the latest valid CameraInfo, else the opt-in fallback, else None."""
        if self.camera is not None:
            return self.camera
        if self.fallback_fov > 0:
            self.get_logger().warn(
                f"using GUESSED intrinsics ({self.fallback_fov:g} deg horizontal field of view, no distortion) "
                f"because of: {self.camera_problem} on '{self.info_sub.topic_name}'; positions and angles are "
                "approximate until the camera publishes its calibration", throttle_duration_sec=30.0)
            return CameraModel.from_field_of_view(width, height, self.fallback_fov, frame_id)
        self.stats.on_dropped("no valid camera info")
        self.get_logger().warn(
            f"dropping images: {self.camera_problem} on '{self.info_sub.topic_name}' "
            f"({self.count_publishers(self.info_sub.topic_name)} publishers); poses need the camera's K and D "
            "(or opt in to guessed intrinsics with fallback_horizontal_fov_deg)",
            throttle_duration_sec=5.0,
        )
        return None

    def _on_input(self, header, decode) -> None:
        start = time.perf_counter()
        self.stats.on_received()
        self._last_image_time = time.monotonic()
        try:
            rgb = decode()
        except ImageConversionError as exc:
            self.stats.on_dropped("bad image")
            self._warn_each(f"dropping image on '{self.image_sub.topic_name}': {exc}")
            return
        camera = self._camera_for(rgb.shape[1], rgb.shape[0], header.frame_id)
        if camera is None:
            return
        if self.camera is not None and header.frame_id != self.camera_info_frame:
            self.get_logger().warn(
                f"image frame_id '{header.frame_id}' differs from camera info frame_id "
                f"'{self.camera_info_frame}': are both topics from the same camera?",
                throttle_duration_sec=10.0,
            )
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        try:
            faces = self._process(header, rgb, camera, stamp)
        except CameraModelError as exc:
            self.stats.on_dropped("camera info does not fit image")
            self._warn_each(f"dropping image: {exc}")
            return
        except Exception as exc:  # one bad frame must not end the node
            self.stats.on_error(f"{type(exc).__name__}: {exc}")
            self.get_logger().error(
                f"processing the image stamped {stamp:.3f} failed ({type(exc).__name__}: {exc}); skipping it",
                throttle_duration_sec=5.0,
            )
            return
        self._last_heads = faces
        self.stats.on_processed((time.perf_counter() - start) * 1000.0, faces)

    def _process(self, header, rgb, camera, stamp: float) -> int:
        """Estimate and publish everything for one image; returns the number of heads published."""
        result = self.engine.process(rgb, camera, stamp)
        if result.reset:
            self.get_logger().warn(f"tracks reset: {result.reset}")
        if self.camera_frame:
            header.frame_id = self.camera_frame
        self.heads_pub.publish(head_pose_array(header, result.heads, rgb.shape[1], rgb.shape[0]))
        if self.tf is not None and result.heads:
            if header.frame_id:
                transforms = []
                for head in result.heads:
                    transforms += face_transforms(header, head, self.face_prefix, self.gaze_prefix)
                self.tf.send(transforms)
            else:
                self.get_logger().warn(
                    "image has an empty header.frame_id: no TF published; set the `camera_frame` parameter",
                    throttle_duration_sec=10.0,
                )
        attention = self._attend(header, result, stamp)
        if self.markers_pub is not None and self.markers_pub.get_subscription_count() > 0:
            cone = self.config.attention.cone_half_angle_deg
            self.markers_pub.publish(marker_array(header, result.heads, attention, result.ended, self.marker_ids,
                                                  cone, min(1.0, self.config.attention.max_distance_m)))
        else:
            # Nobody draws them (1.8 ms a frame for 6 faces): only forget the ended tracks' ids.
            for track_id in result.ended:
                self.marker_ids.release(track_id)
        if self.debug_pub.get_subscription_count() > 0:
            canvas = annotate(rgb, fit_camera_to_image(camera, rgb.shape[1], rgb.shape[0]), result.heads, attention)
            self.debug_pub.publish(Image(header=header, height=canvas.shape[0], width=canvas.shape[1], encoding="bgr8",
                                         is_bigendian=0, step=canvas.shape[1] * 3, data=canvas.tobytes()))
        return len(result.heads)

    def _attend(self, header, result, stamp: float) -> dict:
        """Attention of this image's heads, published with its events; {face id: FaceAttention}."""
        if self.attention is None:
            return {}
        if result.reset:
            self.attention.reset()
        self.attention.forget(result.ended)
        targets, gaze, problems = self.targets.resolve(header.frame_id)
        for problem in problems:
            self._warn_each(f"attention: {problem}; that target is left out", period=10.0)
        attention, events = self.attention.update(result.heads, targets, stamp, gaze)
        self.attention_pub.publish(attention_array(header, attention))
        for event in events:
            self.events_pub.publish(attention_event(header, event))
        return {a.face_id: a for a in attention}

    # -- timers -------------------------------------------------------------------------------

    def _check_input(self) -> None:
        """Say what the node is waiting for, instead of waiting silently."""
        now = time.monotonic()
        since = now - (self._last_image_time or self._started)
        if since < self.wait_warning_period:
            return
        topic = self.image_sub.topic_name
        publishers = self.count_publishers(topic)
        hint = (
            "no publisher: is the camera running, and is the topic remapped (-r image:=/your/camera/image_raw)?"
            if publishers == 0 else
            f"{publishers} publisher(s) exist but nothing arrives: check that they publish, and their QoS"
        )
        what = "no image received yet" if self._last_image_time is None else f"no image for {since:.0f} s"
        self.get_logger().warn(f"waiting for images on '{topic}': {what}; {hint}")
        if self.camera is None:
            self.get_logger().warn(
                f"waiting for camera info on '{self.info_sub.topic_name}': {self.camera_problem} "
                f"({self.count_publishers(self.info_sub.topic_name)} publishers)"
            )

    def _intrinsics_state(self) -> str:
        """ok, missing or invalid; with ", fallback" when guessed intrinsics stand in."""
        if self.camera is not None:
            return "ok"
        state = "invalid" if self.camera_info_received else "missing"
        return f"{state}, fallback {self.fallback_fov:g} deg" if self.fallback_fov > 0 else state

    def _publish_diagnostics(self) -> None:
        s = self.stats.summary()
        values = {
            "input rate (Hz)": s["input_rate_hz"],
            "processing rate (Hz)": s["processing_rate_hz"],
            "latency p50 (ms)": s["latency_p50_ms"],
            "latency p99 (ms)": s["latency_p99_ms"],
            "faces": self._last_heads,
            "images received": self.stats.total_received,
            "images processed": self.stats.total_processed,
            "images dropped": sum(self.stats.dropped.values()),
            "intrinsics": self._intrinsics_state(),
            "last error": self.stats.last_error or "none",
        }
        values.update({f"dropped: {k}": v for k, v in self.stats.dropped.items()})
        values.update(self.engine.describe())
        if self.stats.consecutive_errors >= 3:
            level, message = DiagnosticStatus.ERROR, f"processing keeps failing: {self.stats.last_error}"
        elif self.camera is None:
            guessed = " (using guessed intrinsics)" if self.fallback_fov > 0 else ""
            level, message = DiagnosticStatus.WARN, f"camera info: {self.camera_problem}{guessed}"
        elif self._last_image_time is None or time.monotonic() - self._last_image_time > self.wait_warning_period:
            level, message = DiagnosticStatus.WARN, "no images"
        else:
            level, message = DiagnosticStatus.OK, f"{s['processing_rate_hz']:.1f} Hz, {self._last_heads} faces"
        self.diag_pub.publish(diagnostics_message(
            self.get_clock().now().to_msg(), f"{self.get_name()}: head pose", self.get_fully_qualified_name(),
            level, message, values,
        ))


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    node = None
    try:
        node = HeadPoseNode()
        rclpy.spin(node)
    except StartupError as exc:
        rclpy.logging.get_logger("headpose_node").fatal(f"cannot start: {exc}")
        return 1
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
