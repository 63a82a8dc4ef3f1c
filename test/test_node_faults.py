"""An exception inside inference: the frame is skipped, the next one served, a repeated failure is an ERROR.

The real engine turns every bad input into a reason before inference, so no
real input makes inference itself raise; the fault is injected here (the one
stand-in in this file): the node runs in this process, and its engine's
process() raises for chosen frames. Everything else is real: the node, its
models, DDS, /diagnostics.
"""

from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from headpose_ros.core.camera import CameraModel  # noqa: E402
from headpose_ros.tools.ros_harness import CameraClient  # noqa: E402
from headpose_ros.ros.node import HeadPoseNode  # noqa: E402

from support import astronaut_frame  # noqa: E402

pytestmark = pytest.mark.ros
FRAME = "fault_camera_optical_frame"


@pytest.fixture
def running_node(ros):
    node = HeadPoseNode(
        parameter_overrides=[Parameter("diagnostics_period", value=0.2), Parameter("tracking.min_hits", value=1)],
        cli_args=["--ros-args", "-r", "image:=/fault/image", "-r", "camera_info:=/fault/camera_info"])
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [executor.spin_once(timeout_sec=0.05) for _ in iter(stop.is_set, True)],
                              daemon=True)
    thread.start()
    yield node
    stop.set()
    thread.join(timeout=5)
    executor.remove_node(node)
    node.destroy_node()


def test_an_inference_exception_skips_the_frame_and_repeats_become_an_error(running_node, photo):
    node = running_node
    doomed: set[float] = set()
    real_process = node.engine.process

    def process(image, camera, stamp, scene=None):
        if stamp in doomed:
            raise RuntimeError("injected fault")
        return real_process(image, camera, stamp, scene)

    node.engine.process = process
    client = CameraClient("/fault/image", "/fault/camera_info", "/headpose_node/heads", name="fault_client")
    camera = CameraModel.from_field_of_view(640, 480, 60.0, FRAME)
    frame = astronaut_frame(photo)

    def send(fail: bool):
        ns = time.time_ns()
        stamp = Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
        if fail:
            doomed.add(stamp.sec + stamp.nanosec * 1e-9)
        client.publish_frame(frame, camera, stamp, FRAME)
        time.sleep(0.1)
        return stamp

    def status():
        found = [s for d in client.diagnostics for s in d.status if s.name.endswith("head pose")]
        return found[-1] if found else None

    try:
        client.wait_for_node(None, timeout=30)
        for _ in range(20):  # until frames flow both ways (the first ones after matching may be lost)
            warm = send(fail=False)
            if client.wait_until(lambda: client.heads_for(warm) is not None, timeout=0.5):
                break
        bad = send(fail=True)
        good = send(fail=False)
        assert client.wait_until(lambda: client.heads_for(good) is not None, timeout=3.0)
        assert client.heads_for(bad) is None and len(client.heads_for(good).heads) == 1
        assert node.stats.dropped["processing error"] == 1 and node.stats.consecutive_errors == 0
        for _ in range(4):
            send(fail=True)
        assert client.wait_until(lambda: status() is not None and status().level == DiagnosticStatus.ERROR, 3.0)
        values = {kv.key: kv.value for kv in status().values}
        assert "processing keeps failing" in status().message and "injected fault" in values["last error"]
        assert "RuntimeError" in values["last error"]
        recovered = send(fail=False)
        assert client.wait_until(lambda: client.heads_for(recovered) is not None, timeout=3.0)
        assert client.wait_until(lambda: status().level == DiagnosticStatus.OK, timeout=3.0)
    finally:
        client.close()
