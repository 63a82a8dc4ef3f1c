"""Drive a real headpose_node over DDS: start it as a user would, feed it images, collect what it publishes.

Used by `headpose-ros demo`, `bench` and `soak` and by the integration tests,
so all of them exercise the node exactly the same way. Tooling, not product:
the node itself (headpose_ros.ros) never imports it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from headpose_ros.msg import HeadPoseArray

from ..core.camera import CameraModel
from ..core.rotation import quaternion_xyzw
from ..ros.tf_publisher import TF_QOS


def share_file(relative: str) -> Path:
    """A file of the package's share directory (config/..., launch/...): installed copy, else source tree."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("headpose_ros")))
    except (ImportError, LookupError, OSError):  # not installed, or AMENT_PREFIX_PATH unset (a venv)
        pass
    candidates += [Path(sys.prefix) / "share" / "headpose_ros", Path(__file__).resolve().parents[2]]
    for share in candidates:
        if (share / relative).is_file():
            return share / relative
    raise FileNotFoundError(f"{relative} not found: is headpose_ros installed (make setup)?")


def default_params_file() -> Path:
    return share_file("config/headpose.yaml")


def large_image_dds_env(localhost_only: bool = False) -> dict[str, str]:
    """FASTRTPS_DEFAULT_PROFILES_FILE for config/fastdds_large_images.xml (see why in that file).

    localhost_only: a temporary copy whose UDP transport is bound to 127.0.0.1.
    """
    profile = share_file("config/fastdds_large_images.xml")
    if localhost_only:
        text = profile.read_text().replace(
            "<type>UDPv4</type>",
            "<type>UDPv4</type>\n      <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>",
        )
        fd, name = tempfile.mkstemp(prefix="headpose_fastdds_", suffix=".xml")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        atexit.register(os.unlink, name)
        profile = Path(name)
    return {"FASTRTPS_DEFAULT_PROFILES_FILE": str(profile)}


def isolated_ros_env(domain_id: int | None = None) -> dict[str, str]:
    """Environment that keeps DDS traffic on this machine, in a domain of its own, and carries large images."""
    domain = random.Random().randint(1, 100) if domain_id is None else domain_id
    env = {"ROS_DOMAIN_ID": str(domain), **large_image_dds_env(localhost_only=True)}
    if os.environ.get("ROS_DISTRO") == "humble":
        env["ROS_LOCALHOST_ONLY"] = "1"  # deprecated (and warned about) from Jazzy on
    else:
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    return env


@contextlib.contextmanager
def isolated_ros(domain_id: int | None = None):
    """rclpy initialised in a DDS domain of its own, discovery on localhost only, with the large-image profile;
    the environment restored afterwards.

    domain_id: None for a random one. The node processes started inside
    (NodeProcess) inherit the environment.
    """
    with ros_with_env(isolated_ros_env(domain_id)):
        yield


@contextlib.contextmanager
def ros_with_env(env: dict[str, str]):
    """rclpy initialised with `env` set in os.environ (before rclpy.init(), so child processes inherit it);
    rclpy shut down and os.environ restored exactly afterwards."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        rclpy.init()
        yield
    finally:
        rclpy.try_shutdown()
        os.environ.clear()
        os.environ.update(saved)


def node_command(executable: str = "headpose_node") -> list[str]:
    """How a user starts the node (or headpose_lifecycle_node) here: the installed executable beside this
    Python, else on PATH."""
    beside = Path(sys.executable).parent / executable
    if beside.exists():
        return [str(beside)]
    found = shutil.which(executable)
    if found:
        return [found]
    entry = "lifecycle_main" if executable == "headpose_lifecycle_node" else "main"
    return [sys.executable, "-c", f"import sys; from headpose_ros.ros.node import {entry}; sys.exit({entry}())"]


class NodeProcess:
    """headpose_node in its own process, with its output in a log file.

    params: -p overrides (name -> value); remaps: -r from:=to; namespace: -r __ns:= (empty: none).
    log_dir: keep the log there, as <name>.log (for a user to read); None: a temporary file that goes when this
    process ends.
    executable: headpose_node, or headpose_lifecycle_node for the managed node.
    """

    def __init__(self, params_file: Path | None = None, params: dict | None = None, remaps: dict | None = None,
                 env: dict | None = None, name: str = "headpose_node", namespace: str = "",
                 log_dir: Path | None = None,
                 executable: str = "headpose_node"):
        if log_dir is not None:
            Path(log_dir).mkdir(parents=True, exist_ok=True)
            self.log_path = Path(log_dir) / f"{name}.log"
        else:
            fd, log = tempfile.mkstemp(prefix=f"{name}-", suffix=".log")
            os.close(fd)
            self.log_path = Path(log)
            atexit.register(self.log_path.unlink, missing_ok=True)
        args = node_command(executable) + ["--ros-args", "-r", f"__node:={name}"]
        if namespace:
            args += ["-r", f"__ns:={namespace}"]
        if params_file is not None:
            args += ["--params-file", str(params_file)]
        for key, value in (params or {}).items():
            args += ["-p", f"{key}:={_param_literal(value)}"]
        for src, dst in (remaps or {}).items():
            args += ["-r", f"{src}:={dst}"]
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "NodeProcess":
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (what Ctrl-C sends), then SIGKILL if it does not end in `timeout` s."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _param_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    return repr(value)


def stamp_now() -> Time:
    """The wall clock now as a message stamp, as camera drivers stamp their images."""
    ns = time.time_ns()
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_key(stamp) -> tuple[int, int]:
    """(sec, nanosec) of a stamp: the key that matches what the node answers to the frame it answers."""
    return (stamp.sec, stamp.nanosec)


class Pacer:
    """Keeps a publishing loop at `rate` Hz: wait() sleeps until the next period from the start.

    max_lag_s: once the loop is this far behind, it starts afresh from now
    instead of publishing in a burst to catch up (None: always catch up).
    """

    def __init__(self, rate: float, max_lag_s: float | None = None):
        self.period = 1.0 / rate
        self.max_lag_s = max_lag_s
        self.next_time = time.monotonic()

    def wait(self) -> None:
        self.next_time += self.period
        time.sleep(max(0.0, self.next_time - time.monotonic()))
        if self.max_lag_s is not None and self.next_time < time.monotonic() - self.max_lag_s:
            self.next_time = time.monotonic()


def image_msg(rgb: np.ndarray, stamp, frame_id: str, encoding: str = "rgb8") -> Image:
    """An Image message of an (h, w, 3) uint8 RGB array, in rgb8 or bgr8."""
    pixels = rgb if encoding == "rgb8" else np.ascontiguousarray(rgb[:, :, ::-1])
    h, w = pixels.shape[:2]
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * 3)
    msg.header = Header(stamp=stamp, frame_id=frame_id)
    msg.data = pixels.tobytes()
    return msg


def camera_info_msg(camera: CameraModel, stamp, frame_id: str) -> CameraInfo:
    msg = CameraInfo(width=int(camera.width), height=int(camera.height))
    msg.header = Header(stamp=stamp, frame_id=frame_id)
    msg.distortion_model = camera.distortion_model
    msg.d = [float(v) for v in camera.D]
    msg.k = [float(v) for v in camera.K.ravel()]
    msg.r = [float(v) for v in np.eye(3).ravel()]
    P = np.zeros((3, 4))
    P[:, :3] = camera.K
    msg.p = [float(v) for v in P.ravel()]
    return msg


def optical_frame_static_tf(stamp, body_frame: str, optical_frame: str) -> TransformStamped:
    """body (x forward, z up) -> optical (x right, y down, z forward), as camera drivers publish it."""
    tf = TransformStamped()
    tf.header.stamp = stamp
    tf.header.frame_id = body_frame
    tf.child_frame_id = optical_frame
    # The optical axes in body coordinates: x_o = -y_b, y_o = -z_b, z_o = x_b.
    q = quaternion_xyzw(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))
    tf.transform.rotation.x, tf.transform.rotation.y, tf.transform.rotation.z, tf.transform.rotation.w = (float(v) for v in q)
    return tf


class CameraClient(Node):
    """Publishes a camera (Image + CameraInfo) and records what headpose_node publishes back.

    heads: list of (receive time, HeadPoseArray); tf: list of (receive time, TFMessage);
    diagnostics: list of DiagnosticArray.
    expect_tf: the node publishes /tf (publish_tf true), so wait_for_node waits for it to be matched too.
    Spins in a background thread; every method is thread-safe enough for tests.
    """

    def __init__(self, image_topic: str = "/camera/image_raw", info_topic: str = "/camera/camera_info",
                 heads_topic: str = "/headpose_node/heads", name: str = "headpose_camera_client",
                 expect_tf: bool = False):
        super().__init__(name)
        from tf2_msgs.msg import TFMessage
        from diagnostic_msgs.msg import DiagnosticArray

        sensor = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.image_pub = self.create_publisher(Image, image_topic, sensor)
        self.info_pub = self.create_publisher(CameraInfo, info_topic, sensor)
        self.static_pub = self.create_publisher(
            TFMessage, "/tf_static", QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.heads_topic = heads_topic
        self.heads: list[tuple[float, HeadPoseArray]] = []
        self.tf: list[tuple[float, TFMessage]] = []
        self.diagnostics: list[DiagnosticArray] = []
        self._lock = threading.RLock()  # predicates given to wait_until may call heads_for()
        self._callbacks: list[Callable[[float, HeadPoseArray], None]] = []
        # What wait_for_node waits to be matched with the node's publishers (record() adds to it):
        # discovery can lag by seconds while large images flow, and a message sent before the
        # match is lost to this client.
        tf = self.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS)
        self._expected = [self.create_subscription(HeadPoseArray, heads_topic, self._on_heads, 50),
                          self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 10),
                          *([tf] if expect_tf else [])]
        self._recorded: dict = {}  # topic -> subscription, of record()
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._running = True
        self._thread.start()

    def _spin(self) -> None:
        while self._running and rclpy.ok(context=self.context):
            self._executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._executor.remove_node(self)
        self.destroy_node()

    def record(self, msg_type, topic: str, depth: int = 50, callback: Callable | None = None,
               expected: bool = True) -> list:
        """Subscribe to `topic` (reliable, keep last `depth`); the returned list fills with (receive time, message).

        callback(receive time, message), if given, runs on each message after it is stored.
        expected: the node always publishes this topic, so wait_for_node waits for it to be matched
        (False for topics that depend on the node's parameters).
        """
        store: list = []

        def keep(msg) -> None:
            now = time.monotonic()
            with self._lock:
                store.append((now, msg))
            if callback is not None:
                callback(now, msg)

        subscription = self.create_subscription(msg_type, topic, keep, depth)
        self._recorded[subscription.topic_name] = subscription
        if expected:
            self._expected.append(subscription)
        return store

    def matched(self, topic: str) -> bool:
        """True when our record()ed subscription to `topic` is matched with a publisher."""
        subscription = self._recorded.get(topic)
        return subscription is not None and subscription.get_publisher_count() > 0

    def on_heads(self, callback: Callable[[float, HeadPoseArray], None]) -> None:
        self._callbacks.append(callback)

    def _on_heads(self, msg: HeadPoseArray) -> None:
        now = time.monotonic()
        with self._lock:
            self.heads.append((now, msg))
        for cb in self._callbacks:
            cb(now, msg)

    def _on_tf(self, msg) -> None:
        with self._lock:
            self.tf.append((time.monotonic(), msg))

    def _on_diag(self, msg) -> None:
        with self._lock:
            self.diagnostics.append(msg)

    def publish_frame(self, rgb: np.ndarray, camera: CameraModel, stamp, frame_id: str = "camera_optical_frame",
                      encoding: str = "rgb8", send_info: bool = True) -> Image:
        """Camera info first, then the image, both with the same stamp (as camera drivers do)."""
        if send_info:
            self.info_pub.publish(camera_info_msg(camera, stamp, frame_id))
        msg = image_msg(rgb, stamp, frame_id, encoding)
        self.image_pub.publish(msg)
        return msg

    def wait_for_node(self, node: NodeProcess | None, timeout: float = 60.0) -> None:
        """Until the node subscribes to the image topic (models loaded) and our subscriptions to ~/heads,
        /diagnostics (/tf with expect_tf) and every expected record()ed topic are matched with its
        publishers; raises if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node is not None and not node.alive():
                raise RuntimeError(f"headpose_node exited with status {node.process.returncode}:\n{node.output()[-3000:]}")
            if self.image_pub.get_subscription_count() > 0 and all(s.get_publisher_count() > 0 for s in self._expected):
                return
            time.sleep(0.05)
        raise TimeoutError(f"headpose_node did not subscribe to {self.image_pub.topic_name} within {timeout:.0f} s")

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate():
                    return True
            time.sleep(0.02)
        with self._lock:
            return predicate()

    def received(self) -> tuple[list, list]:
        """Copies of (heads, tf): (receive time, message) pairs so far."""
        with self._lock:
            return list(self.heads), list(self.tf)

    def heads_for(self, stamp) -> HeadPoseArray | None:
        """The HeadPoseArray whose header stamp equals `stamp`, if it arrived."""
        with self._lock:
            for _, msg in self.heads:
                if stamp_key(msg.header.stamp) == stamp_key(stamp):
                    return msg
        return None


@contextlib.contextmanager
def node_with_camera(image_topic: str, info_topic: str, params: dict, params_file: Path | None = None,
                     log_dir: Path | None = None):
    """headpose_node (NodeProcess, `params` over `params_file`, default config/headpose.yaml) reading
    `image_topic` and `info_topic`, and a CameraClient publishing there: yields (node, client), then
    closes the client and stops the node. Waiting for the node (wait_for_node) is the caller's. log_dir: keep
    the node's log there (NodeProcess)."""
    with NodeProcess(params_file or default_params_file(), params=params, log_dir=log_dir,
                     remaps={"image": image_topic, "camera_info": info_topic}) as node:
        client = CameraClient(image_topic, info_topic, "/headpose_node/heads")
        try:
            yield node, client
        finally:
            client.close()
