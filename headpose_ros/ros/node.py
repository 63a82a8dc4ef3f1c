"""headpose_node: camera image + camera_info in, head poses out (HeadPoseArray, TF, attention, diagnostics).

A thin adapter: it converts messages, calls the ROS-free HeadPoseEngine and
converts the result back. Parameters come from ros.parameters, intrinsics
from ros.intrinsics, health from ros.diagnostics. Topics (all remappable):

- ``image`` (sensor_msgs/Image, subscribed, best effort by default, keep last 1)
- ``camera_info`` (sensor_msgs/CameraInfo, subscribed, the same QoS)
- ``~/heads`` (headpose_ros/HeadPoseArray, published, reliable, depth 10)
- ``/tf`` (face_<id> and gaze_<id>, REP-155, stamped with the image stamp)
- ``/diagnostics`` (diagnostic_msgs/DiagnosticArray, once per `diagnostics_period`)
- ``~/attention`` (headpose_ros/AttentionTargetArray: what each face attends, every image)
- ``~/attention_events`` (headpose_ros/AttentionEvent: a face's attended target changed)
- ``~/markers`` (visualization_msgs/MarkerArray: axes, gaze, cone, label, attended target)
- ``~/debug_image`` (sensor_msgs/Image, bgr8: the annotated input, drawn only while subscribed)
- ``/humans/...`` (the ROS4HRI topics, ros.ros4hri, while ros4hri.enabled)

Two executables: headpose_node (HeadPoseNode) serves at once; headpose_lifecycle_node
(HeadPoseLifecycleNode) is the same work, run on the lifecycle transitions.
"""

from __future__ import annotations

import math
import signal
import sys
import time

import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from ..assets import AssetError
from ..core.camera import CameraModelError
from ..core.config import LIVE_SETTINGS, EngineConfig, for_node, with_values
from ..core.engine import ConfigError
from ..core.inference import InferenceError
from ..pipeline import create_engine
from .diagnostics import ImageLoss, PipelineStats, diagnostics_message, diagnostics_values, health
from .image_conversion import ImageConversionError, ImageDecoder
from .intrinsics import IntrinsicsSource
from .outputs import ResultPublisher
from .parameters import (NodeConfig, StartupError, declare_all, declare_targets, given_parameters, live_change,
                         params_file_problems, ros_params_files, unknown_parameters)
from .ros4hri import ros4hri_problems
from .targets import TargetError, TargetResolver


def input_qos(reliability: str) -> QoSProfile:
    """Keep last 1: the newest frame only, so a slow frame never builds a backlog behind it."""
    return QoSProfile(
        depth=1,
        history=HistoryPolicy.KEEP_LAST,
        reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


class HeadPoseWork:
    """What headpose_node does, in the phases of a managed node (mixed into a rclpy Node or LifecycleNode):

    declare: parameters, checked (at construction); load: the models and the attention targets (configure);
    start: subscriptions, publishers and timers (activate); stop: all of those gone, the models kept
    (deactivate); unload: the models freed (cleanup). HeadPoseNode runs declare, load and start at once.
    """

    engine = None  # the HeadPoseEngine while loaded

    def _declare(self, argv: list[str]) -> None:
        self.config: EngineConfig = declare_all(self, EngineConfig(), LIVE_SETTINGS)
        self.config = with_values(self.config, {
            "attention.targets": declare_targets(self, self.config.attention.target_names)})
        self.settings: NodeConfig = declare_all(self, NodeConfig())
        problems = self.settings.problems()
        if problems:
            raise StartupError("; ".join(problems))
        self._check_given_parameters(argv)
        self.config = for_node(self.config, self.get_fully_qualified_name())
        n = self.settings
        if n.ros4hri.enabled:
            problems = ros4hri_problems(n.face_frame_prefix, n.gaze_frame_prefix, self.config.tracking.id_prefix,
                                        self.config.tracking.id_style)
            if problems:
                raise StartupError("; ".join(problems))
            if not n.publish_tf:
                self.get_logger().warn("ros4hri.enabled without publish_tf: ROS4HRI clients look up the face_<id> "
                                       "frames on /tf and will not find them")
        self._warned: dict[str, float] = {}  # message -> when it was last logged (_warn_each)
        self._entities: dict[str, tuple] = {}  # phase -> what it created (publishers, subscriptions, timers)
        self.decoder = ImageDecoder()
        self.add_on_set_parameters_callback(self._on_set_parameters)

    def _load(self) -> None:
        n = self.settings
        before = self._entity_sets()
        try:
            self.engine = create_engine(self.config, model_dir=n.model_dir, unchecked_models=n.model_dir_unchecked,
                                        log=self.get_logger().info)
        except (ConfigError, InferenceError, AssetError, OSError, ValueError) as exc:
            raise StartupError(str(exc)) from None
        try:
            self._setup_attention()
        except StartupError:
            self.engine = None
            self._destroy(self._created_since(before))
            raise
        self._entities["load"] = self._created_since(before)

    def _start(self) -> None:
        n = self.settings
        before = self._entity_sets()
        self.stats = PipelineStats()
        self.loss = ImageLoss()
        self._started = time.monotonic()
        self._last_image_time: float | None = None
        self._last_heads = 0
        self._image_camera_problem = ""  # why the latest image's intrinsics were refused at its size ("" if not)
        self._last_reasons: set[str] = set()  # why faces of the previous image were not measured

        qos = input_qos(n.image_reliability)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.outputs = ResultPublisher(self, n, attention=self.targets is not None)
        self.intrinsics = IntrinsicsSource(self, "camera_info", qos, n.fallback_horizontal_fov_deg, self._warn_each,
                                           on_stamp=self.loss.on_camera_info)
        if n.image_transport == "compressed":
            # image_transport's naming: the (remapped) image topic with /compressed appended.
            topic = self.resolve_topic_name("image") + "/compressed"
            self.image_sub = self.create_subscription(CompressedImage, topic, self._on_compressed, qos)
        else:
            self.image_sub = self.create_subscription(Image, "image", self._on_image, qos)
        # Health is judged in real time, also under use_sim_time (a paused or absent /clock
        # must not silence the diagnostics and the waiting warnings).
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(n.diagnostics_period, self._publish_diagnostics, clock=steady)
        self.create_timer(n.wait_warning_period, self._check_input, clock=steady)
        # Another node of the same name would answer every image too, under the same TF frames and diagnostics
        # name: look for one once discovery has had time, and again a little later.
        self._name_checks_left = 3
        self._name_check = self.create_timer(3.0, self._check_unique_name, clock=steady)
        self._entities["start"] = self._created_since(before)

        models = ", ".join(f"{k}: {v}" for k, v in self.engine.describe().items())
        prefix = self.config.tracking.id_prefix
        frames = f"{n.face_frame_prefix}{prefix}<id>" if self.outputs.tf else "disabled"
        self.get_logger().info(
            f"ready: image '{self.image_sub.topic_name}', camera_info '{self.intrinsics.topic}', "
            f"heads '{self.outputs.heads.topic_name}', "
            f"tf {frames} via {self.outputs.tf.backend if self.outputs.tf else '-'}; images via "
            f"{self.decoder.backend}; {models}"
        )

    def _stop(self) -> None:
        """Stop reading images and publishing; the models and the tracks' state stay."""
        if "start" not in self._entities:
            return
        try:
            self.outputs.close(self.get_clock().now().to_msg())
        except Exception as exc:  # the context may already be shut down (Ctrl-C): nobody to tell
            self.get_logger().debug(f"could not say that no face is left: {exc}")
        self._destroy(self._entities.pop("start"))

    def _unload(self) -> None:
        self._stop()
        self._destroy(self._entities.pop("load", ((), (), ())))
        self.engine = None
        self.targets = None

    def _entity_sets(self) -> tuple[set, set, set]:
        return set(self.publishers), set(self.subscriptions), set(self.timers)

    def _created_since(self, before: tuple[set, set, set]) -> tuple:
        return tuple(now - was for now, was in zip(self._entity_sets(), before))

    def _destroy(self, entities: tuple) -> None:
        publishers, subscriptions, timers = entities
        for timer in timers:
            self.destroy_timer(timer)
        for subscription in subscriptions:
            self.destroy_subscription(subscription)
        for publisher in publishers:
            self.destroy_publisher(publisher)

    def _check_given_parameters(self, argv: list[str]) -> None:
        """Warn about each parameter given that the node does not have, and each params file meant for another
        node: both would otherwise leave a setting at its default without a word."""
        given = list(given_parameters(self))
        declared = set(self._parameters)
        for warning in unknown_parameters(given, declared, self.config.attention.target_names):
            self.get_logger().warn(warning)
        for warning in params_file_problems(ros_params_files(argv), self.get_fully_qualified_name()):
            self.get_logger().warn(warning)
        used = len(set(given) & declared)
        self.get_logger().info(f"parameters: {used} given, the other {len(declared) - used} at their defaults")

    def _setup_attention(self) -> None:
        """Where the targets are (TF where installed), when attention.enabled."""
        self.targets = None
        a = self.config.attention
        if not a.enabled:
            return
        try:
            self.targets = TargetResolver(self, a, self.settings.camera_frame)
        except TargetError as exc:
            raise StartupError(str(exc)) from None
        self.get_logger().info(
            f"attention: robot at '{a.robot_frame or 'the camera frame'}' {list(a.robot_offset)}, targets "
            f"{[t.name for t in a.targets] or 'none'}, other faces {'too' if a.faces_as_targets else 'not'}; "
            f"frames via {self.targets.backend}")

    def _warn_each(self, message: str, period: float = 5.0, key: str | None = None) -> None:
        """A warning throttled per message (or per `key`), not per call site: a second kind of problem is never
        hidden by the first."""
        now = time.monotonic()
        key = message if key is None else key
        if now - self._warned.get(key, -math.inf) >= period:
            self._warned[key] = now
            self.get_logger().warn(message)

    def _on_set_parameters(self, params):
        """Apply changes of the live settings at once, or refuse them with the reason (read-only ones never get here)."""
        apply = self.engine.apply if self.engine is not None else (lambda config: None)
        self.config, result = live_change(self.config, params, apply, self.get_logger())
        return result

    # -- callbacks ----------------------------------------------------------------------------

    def _on_image(self, msg: Image) -> None:
        self._on_input(msg.header, lambda: self.decoder.image(msg))

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._on_input(msg.header, lambda: self.decoder.compressed(msg))

    def _on_input(self, header, decode) -> None:
        start = time.perf_counter()
        self.stats.on_received()
        self.loss.on_image((header.stamp.sec, header.stamp.nanosec))
        self._last_image_time = time.monotonic()
        try:
            rgb = decode()
        except ImageConversionError as exc:
            self.stats.on_dropped("bad image")
            self._warn_each(f"dropping image on '{self.image_sub.topic_name}': {exc}")
            return
        camera = self.intrinsics.camera_for(rgb.shape[1], rgb.shape[0], header.frame_id)
        if camera is None:
            self.stats.on_dropped("no valid camera info")
            return
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        if stamp == 0.0:
            # An unset stamp: every frame would be the same instant (no smoothing speed, no dwell time).
            stamp = self.get_clock().now().nanoseconds * 1e-9
            self._warn_each(f"images on '{self.image_sub.topic_name}' are stamped 0 (unset): timing tracking, "
                            "smoothing and attention by this node's clock instead; the outputs keep the stamp 0. "
                            "Have the camera driver stamp its images", period=30.0)
        try:
            faces = self._process(header, rgb, camera, stamp)
        except CameraModelError as exc:
            self.stats.on_dropped("camera info unusable for this image")
            self._image_camera_problem = str(exc)
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
        self._image_camera_problem = ""
        self.stats.on_processed((time.perf_counter() - start) * 1000.0, faces)

    def _process(self, header, rgb, camera, stamp: float) -> int:
        """Estimate and publish everything for one image; returns the number of heads published."""
        scene = None
        if self.targets is not None:
            scene = self.targets.resolve(header.frame_id)
            for problem in scene.problems:
                self._warn_each(f"attention: {problem}; that target is left out", period=10.0)
        result = self.engine.process(rgb, camera, stamp, scene)
        if result.reset:
            self.get_logger().warn(f"tracks reset: {result.reset}")
        self._report_not_measured(result.rejected)
        self.outputs.publish(header, result, rgb, self.config.attention)
        return len(result.heads)

    def _report_not_measured(self, rejected) -> None:
        """Count the faces found but not measured by reason, and say why: at once for a reason the previous
        image did not have, else at most every 10 s per reason."""
        reasons = set()
        for r in rejected:
            reason = r.status.value
            self.stats.on_not_measured(reason)
            period = 0.0 if reason not in self._last_reasons and reason not in reasons else 10.0
            reasons.add(reason)
            self._warn_each(f"face {r.track_id} found but not measured ({reason}): {r.detail}", period=period,
                            key=f"not measured: {reason}")
        self._last_reasons = reasons

    # -- timers -------------------------------------------------------------------------------

    def _check_unique_name(self) -> None:
        """Warn (once) when another node in the graph has this node's fully-qualified name (3, 6 and 9 s in)."""
        self._name_checks_left -= 1
        me = (self.get_name(), self.get_namespace())
        same = sum(1 for name, namespace in self.get_node_names_and_namespaces() if (name, namespace) == me)
        if same > 1 or self._name_checks_left <= 0:
            self._name_check.cancel()
        if same > 1:
            self.get_logger().warn(
                f"{same} nodes are named {self.get_fully_qualified_name()}: each answers every image, and their TF "
                "frames and /diagnostics collide; give each its own name or namespace (-r __node:=head_camera_pose "
                "or -r __ns:=/head_camera)")

    def _check_input(self) -> None:
        """Say what the node is waiting for, instead of waiting silently."""
        period = self.settings.wait_warning_period
        since = time.monotonic() - (self._last_image_time or self._started)
        if since < period:
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
        waiting = self.intrinsics.waiting_message()
        if waiting:
            self.get_logger().warn(waiting)

    def _publish_diagnostics(self) -> None:
        state, problem = self.intrinsics.state(), self.intrinsics.problem
        if state == "ok" and self._image_camera_problem:  # usable as published, refused for the images' size
            state, problem = "invalid for the images", self._image_camera_problem
        since = None if self._last_image_time is None else time.monotonic() - self._last_image_time
        not_measured = self.stats.take_not_measured()
        lost = self.loss.lost()
        level, message = health(self.stats, intrinsics=state, intrinsics_problem=problem,
                                guessing=self.intrinsics.fallback_fov_deg > 0, seconds_since_image=since,
                                wait_period=self.settings.wait_warning_period, faces=self._last_heads,
                                not_measured=not_measured, lost=lost)
        values = diagnostics_values(self.stats, state, self._last_heads, self.engine.describe(), not_measured, lost)
        # The fully qualified name: unique per node, so statuses of nodes on several cameras never merge.
        self.diag_pub.publish(diagnostics_message(
            self.get_clock().now().to_msg(), f"{self.get_fully_qualified_name()}: head pose",
            self.get_fully_qualified_name(), level, message, values,
        ))


class HeadPoseNode(HeadPoseWork, Node):
    """headpose_node: loads its models and starts serving at once. argv: the command line, for the
    --params-file checks (default: sys.argv)."""

    def __init__(self, argv: list[str] | None = None, **kwargs):
        super().__init__("headpose_node", **kwargs)
        self._declare(sys.argv if argv is None else argv)
        self._load()
        self._start()

    def close(self) -> None:
        self._stop()


class HeadPoseLifecycleNode(HeadPoseWork, LifecycleNode):
    """headpose_node as a managed node (headpose_lifecycle_node): configure loads the models, activate subscribes
    and publishes, deactivate stops processing and keeps the models, cleanup frees them."""

    def __init__(self, argv: list[str] | None = None, **kwargs):
        super().__init__("headpose_node", **kwargs)
        self._declare(sys.argv if argv is None else argv)
        self.targets = None
        self.get_logger().info("unconfigured: `ros2 lifecycle set <node> configure` loads the models")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._load()
        except StartupError as exc:
            self.get_logger().error(f"cannot configure: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info("configured: models loaded; activate to serve images")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._start()
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        self.get_logger().info("inactive: not reading images; the models stay loaded")
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload()
        self.get_logger().info("unconfigured: models freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._unload()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        self._stop()


def lifecycle_main(args: list[str] | None = None) -> int:
    """headpose_lifecycle_node: the same node, managed."""
    return main(args, node_class=HeadPoseLifecycleNode)


def main(args: list[str] | None = None, node_class: type = HeadPoseNode) -> int:
    try:
        rclpy.init(args=args)
    except Exception as exc:  # rcl's own errors (an unreadable --params-file, bad --ros-args) are RCLError
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        print(f"[FATAL] [headpose_node]: cannot start: the ROS arguments were refused ({first}); check that "
              "every --params-file exists and is valid YAML (a node key with ros__parameters), and the "
              "--ros-args syntax", file=sys.stderr)
        return 1
    node = None
    try:
        node = node_class(sys.argv if args is None else args)
        rclpy.spin(node)
    except StartupError as exc:
        rclpy.logging.get_logger("headpose_node").fatal(f"cannot start: {exc}")
        return 1
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        # A second Ctrl-C while shutting down would interrupt the clean-up with a traceback: it is over anyway.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
