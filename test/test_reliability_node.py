"""Bad input, missing intrinsics, time jumps, live parameters and restarts, through the real node over DDS.

Each bad message gets a warning that names the problem and the topic; the
node drops that message and serves the next good one. Where the node runs
in its own process (as users start it), what it logged is read from its
log file.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402
from rcl_interfaces.msg import Parameter as ParameterMsg  # noqa: E402
from rcl_interfaces.msg import ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from headpose_ros.core.camera import CameraModel  # noqa: E402
from headpose_ros.tools.ros_harness import CameraClient, NodeProcess, default_params_file, image_msg  # noqa: E402

from support import astronaut_frame, serving_node  # noqa: E402

pytestmark = pytest.mark.ros

FRAME = "rel_camera_optical_frame"


def now_stamp(offset_s: float = 0.0) -> Time:
    ns = time.time_ns() + int(offset_s * 1e9)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def answered(client, stamp, timeout=3.0):
    """The HeadPoseArray for `stamp`, or None when none came back within `timeout` s."""
    client.wait_until(lambda: client.heads_for(stamp) is not None, timeout=timeout)
    return client.heads_for(stamp)


def serve(client, rgb, camera, frames=4, offset_s=0.0, **kw):
    """Publish `frames` good frames at 15 Hz; the last one's answer (retrying a lost frame)."""
    for _ in range(3):
        for k in range(frames):
            stamp = now_stamp(offset_s)
            client.publish_frame(rgb, camera, stamp, FRAME, **kw)
            time.sleep(1 / 15)
        msg = answered(client, stamp)
        if msg is not None:
            return msg
    raise AssertionError("no HeadPoseArray came back for good frames")


def wait_for_log(node, text, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in node.output():
            return True
        time.sleep(0.1)
    return text in node.output()


def until_logged(node, text, send, tries=8) -> bool:
    """send() until the node logs `text`: best-effort messages may be lost, a warning is not."""
    for _ in range(tries):
        send()
        if wait_for_log(node, text, timeout=1.0):
            return True
    return False


@pytest.fixture(scope="module")
def serving(ros):
    with serving_node("rel", {"tracking.id_style": "sequential", "tracking.min_hits": 1}, "reliability_client") as pair:
        yield pair


@pytest.fixture(scope="module")
def camera():
    return CameraModel.from_field_of_view(640, 480, 60.0, FRAME)


def raw(rgb, **fields):
    """An rgb8 Image message of `rgb` with some fields overridden."""
    msg = image_msg(rgb, now_stamp(), FRAME)
    for key, value in fields.items():
        setattr(msg, key, value)
    return msg


@pytest.mark.parametrize("label, make, logged", [
    ("16-bit depth", lambda f: raw(f, encoding="16UC1"), "unsupported encoding '16UC1'"),
    ("step too small", lambda f: raw(f, step=100), "step 100 is smaller than width x bytes per pixel"),
    ("truncated", lambda f: raw(f, data=bytes(raw(f).data)[:5000]), "truncated data: 5000 bytes"),
    ("zero width", lambda f: raw(f, width=0, step=0), "empty image (0x480)"),
    ("odd-width yuv422", lambda f: raw(f, encoding="yuv422", width=639, step=1278), "yuv422 packs pixels in pairs, so its width must be even, not 639"),
])
def test_a_bad_image_is_named_in_a_warning_and_the_next_good_one_served(client, node, photo, camera,
                                                                         label, make, logged):
    frame = astronaut_frame(photo)

    def send():
        bad = make(frame)
        client.publish_frame(frame, camera, bad.header.stamp, FRAME)  # info for the stamp (and a good frame)
        client.image_pub.publish(bad)

    assert until_logged(node, logged, send), label
    assert f"dropping image on '/rel/image_raw': {logged}" in node.output()
    assert len(serve(client, frame, camera).heads) == 1 and node.alive()


def test_a_4000x3000_frame_is_processed_with_boxes_in_full_resolution(client, node, photo, camera):
    """12 megapixels of mono8 (12 MB: it fits the large-image DDS profile's segment)."""
    gray = cv2.cvtColor(cv2.resize(astronaut_frame(photo), (4000, 3000), interpolation=cv2.INTER_CUBIC),
                        cv2.COLOR_RGB2GRAY)
    big_camera = camera.scaled_to(4000, 3000)
    for _ in range(3):
        stamp = now_stamp()
        client.info_pub.publish(__import__("headpose_ros.tools.ros_harness", fromlist=["x"]).camera_info_msg(
            big_camera, stamp, FRAME))
        msg = image_msg(np.dstack([gray] * 3), stamp, FRAME)  # rebuilt below as mono8
        msg.encoding, msg.step, msg.data = "mono8", 4000, gray.tobytes()
        client.image_pub.publish(msg)
        heads = answered(client, stamp, timeout=10)
        if heads is not None:
            break
    assert heads is not None and len(heads.heads) == 1
    roi = heads.heads[0].roi
    assert roi.width > 600 and roi.x_offset + roi.width <= 4000  # full-resolution pixels (about 110 at 640)
    assert 0.3 < heads.heads[0].pose.pose.position.z < 1.5


@pytest.mark.parametrize("label, info, logged", [
    ("NaN in K", CameraModel([[np.nan, 0, 320], [0, 500, 240], [0, 0, 1]], [], 640, 480, FRAME), "NaN or infinite"),
    ("fx <= 0", CameraModel([[-500, 0, 320], [0, 500, 240], [0, 0, 1]], [], 640, 480, FRAME), "fx=-500"),
    ("fisheye model", CameraModel([[500, 0, 320], [0, 500, 240], [0, 0, 1]], [0.1, 0.01, 0, 0], 640, 480, FRAME,
                                  "equidistant"), "distortion model 'equidistant' is not supported"),
    ("other resolution", CameraModel([[500, 0, 320], [0, 500, 240], [0, 0, 1]], [], 320, 480, FRAME),
     "camera info is for 320x480 images but the image is 640x480"),
    # Implausible: before, poses came out 1,000 km or 50 m away without a word.
    ("focal length 1e9", CameraModel([[1e9, 0, 320], [0, 1e9, 240], [0, 0, 1]], [], 640, 480, FRAME),
     "horizontal field of view is 3.67e-05 deg"),
    ("fx = 10 fy", CameraModel([[5000, 0, 320], [0, 500, 240], [0, 0, 1]], [], 640, 480, FRAME), "fx / fy = 10"),
    ("principal point far outside", CameraModel([[500, 0, 5000], [0, 500, 240], [0, 0, 1]], [], 640, 480, FRAME),
     "principal point cx=5000 lies outside the 640 px image"),
    ("skew", CameraModel([[500, 40, 320], [0, 500, 240], [0, 0, 1]], [], 640, 480, FRAME), "K has skew"),
    ("K[2][2] = 2", CameraModel([[500, 0, 320], [0, 500, 240], [0, 0, 2]], [], 640, 480, FRAME),
     "K's last row is [0.0, 0.0, 2.0]"),
])
def test_unusable_intrinsics_are_refused_with_a_warning(client, node, photo, camera, label, info, logged):
    frame = astronaut_frame(photo)
    assert until_logged(node, logged, lambda: client.publish_frame(frame, info, now_stamp(), FRAME)), label
    # Refused, the intrinsics are out of use: a frame now gets no pose (whichever message comes first).
    stamp = now_stamp()
    client.publish_frame(frame, info, stamp, FRAME)
    time.sleep(0.5)
    assert client.heads_for(stamp) is None
    # And /diagnostics says so: WARN, naming the problem.
    seen = len(client.diagnostics)

    def warned():
        return any(s.level == DiagnosticStatus.WARN and logged in s.message
                   for d in client.diagnostics[seen:] for s in d.status if s.name.endswith("head pose"))

    assert client.wait_until(warned, timeout=4.0), label
    assert len(serve(client, frame, camera).heads) == 1


def test_time_going_backwards_resets_tracks_without_nan(client, node, photo, camera):
    frame = astronaut_frame(photo)
    before = serve(client, frame, camera)
    replay = serve(client, frame, camera, offset_s=-100.0)  # a bag replayed from earlier
    assert wait_for_log(node, "tracks reset: time moved backwards by")
    head = replay.heads[0]
    assert head.id != before.heads[0].id  # a new track: ids may change across a reset
    p, q = head.pose.pose.position, head.pose.pose.orientation
    assert np.all(np.isfinite([p.x, p.y, p.z, q.x, q.y, q.z, q.w, head.yaw, head.pitch, head.roll]))


def test_time_jumping_forward_resets_tracks_and_says_so(client, node, photo, camera):
    """Before, an hour's jump was added to every dwell time (a greeting fired at once) and ids carried on."""
    frame = astronaut_frame(photo)
    before = serve(client, frame, camera)
    later = serve(client, frame, camera, offset_s=3600.0)  # a bag resumed after an hour
    assert wait_for_log(node, "tracks reset: time jumped forward by 3")
    assert later.heads and later.heads[0].id != before.heads[0].id


def test_images_stamped_zero_are_timed_by_the_node_clock_and_said_so(client, node, photo, camera):
    frame = astronaut_frame(photo)
    zero = Time(sec=0, nanosec=0)
    assert until_logged(node, "are stamped 0 (unset)", lambda: client.publish_frame(frame, camera, zero, FRAME))
    assert client.wait_until(lambda: client.heads_for(zero) is not None, timeout=3.0)
    assert len(serve(client, frame, camera).heads) == 1  # stamped frames after them: one stream again


def set_parameters(client, **values):
    """Call /headpose_node/set_parameters like `ros2 param set`; the results (successful, reason) in order."""
    service = client.create_client(SetParameters, "/headpose_node/set_parameters")
    assert service.wait_for_service(timeout_sec=5)
    request = SetParameters.Request()
    for name, value in values.items():
        if isinstance(value, str):
            pv = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        else:
            pv = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value))
        request.parameters.append(ParameterMsg(name=name.replace("__", "."), value=pv))
    future = service.call_async(request)
    assert client.wait_until(future.done, timeout=5)
    client.destroy_client(service)
    return [(r.successful, r.reason) for r in future.result().results]


def test_faces_found_but_not_measured_are_reported_with_the_reason(client, node, photo, camera):
    """Before, a face the engine rejected left ~/heads empty while /diagnostics said OK, "0 faces"."""
    frame = astronaut_frame(photo)
    assert set_parameters(client, pnp__max_facing_angle_deg=0.5) == [(True, "")]  # no real face is that frontal
    try:
        assert len(serve(client, frame, camera).heads) == 0
        assert wait_for_log(node, "found but not measured (turned away)")

        def reported():
            return [s for d in client.diagnostics for s in d.status
                    if s.name.endswith("head pose") and "not measured: turned away" in s.message]

        assert client.wait_until(lambda: bool(reported()), timeout=5.0)
        status = reported()[-1]
        assert status.level == DiagnosticStatus.WARN
        values = {kv.key: kv.value for kv in status.values}
        assert int(values["not measured (period): turned away"]) >= 1
    finally:
        assert set_parameters(client, pnp__max_facing_angle_deg=100.0) == [(True, "")]
    assert len(serve(client, frame, camera).heads) == 1


def test_live_parameters_apply_and_the_others_are_refused_with_a_reason(client, node, photo, camera):
    frame = astronaut_frame(photo)
    assert set_parameters(client, detection__score_threshold=0.999) == [(True, "")]
    # A face already followed needs no detection: let it go (an empty frame) so that it must be found anew.
    assert len(serve(client, np.full_like(frame, 40), camera).heads) == 0
    assert len(serve(client, frame, camera).heads) == 0  # the astronaut scores about 0.9
    assert wait_for_log(node, "parameters changed: detection.score_threshold=0.999")
    (ok, reason), = set_parameters(client, detection__score_threshold=2.0)  # the descriptor's range
    assert not ok and "out of range" in reason
    # 0 was in range and took the node to under 3 Hz (every detector anchor a face to check), without a word.
    (ok, reason), = set_parameters(client, detection__score_threshold=0.0)
    assert not ok and "out of range" in reason
    (ok, reason), = set_parameters(client, attention__cone_half_angle_deg=95.0)  # the engine's own checks
    assert not ok and "attention.cone_half_angle_deg must be in (0, 90)" in reason
    (ok, reason), = set_parameters(client, backend="hopenet")
    assert not ok and "read-only" in reason
    # NaN passes every range comparison: before, it was taken, and every pose became NaN.
    (ok, reason), = set_parameters(client, smoothing__position_min_cutoff=float("nan"))
    assert not ok and "smoothing.position_min_cutoff must be a finite number in (0, 1000], not nan" in reason
    (ok, reason), = set_parameters(client, attention__max_distance_m=float("inf"))
    assert not ok and "attention.max_distance_m must be a finite number" in reason
    assert set_parameters(client, detection__score_threshold=0.5) == [(True, "")]
    assert len(serve(client, frame, camera).heads) == 1


def test_a_killed_node_restarted_serves_again_within_seconds(ros, photo, camera):
    """The camera keeps publishing while the node is killed (SIGKILL) and started again."""
    import os
    import signal

    remaps = {"image": "/restart/image_raw", "camera_info": "/restart/camera_info"}
    params = {"tracking.min_hits": 1}
    frame = astronaut_frame(photo)
    c = CameraClient("/restart/image_raw", "/restart/camera_info", "/headpose_node/heads", name="restart_client")
    try:
        with NodeProcess(default_params_file(), params=params, remaps=remaps, name="headpose_node") as first:
            c.wait_for_node(first, timeout=60)
            assert len(serve(c, frame, camera).heads) == 1
            os.killpg(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
        with NodeProcess(default_params_file(), params=params, remaps=remaps, name="headpose_node") as second:
            started = time.monotonic()
            seen = None
            while time.monotonic() - started < 60 and seen is None:
                stamp = now_stamp()
                c.publish_frame(frame, camera, stamp, FRAME)  # the camera never stopped
                time.sleep(1 / 15)
                msg = c.heads_for(stamp)
                seen = msg if msg is not None and msg.heads else None
            resumed_after = time.monotonic() - started
            print(f"restart: poses again {resumed_after:.1f} s after the new process started")
            assert seen is not None and second.alive()
            assert "Traceback" not in second.output()
    finally:
        c.close()


@pytest.fixture(scope="module")
def compressed_node(ros):
    """The node on compressed input, with opt-in guessed intrinsics and simulated time."""
    params = {"image_transport": "compressed", "fallback_horizontal_fov_deg": 60.0, "use_sim_time": True,
              "tracking.min_hits": 1, "diagnostics_period": 0.5}
    with NodeProcess(default_params_file(), params=params, remaps={"image": "/cmp/image_raw"},
                     name="headpose_node_compressed") as proc:
        yield proc
    assert "Traceback" not in proc.output(), proc.output()


def test_compressed_input_with_guessed_intrinsics(compressed_node, photo):
    node = compressed_node
    c = CameraClient("/cmp/image_raw", "/cmp/camera_info", "/headpose_node_compressed/heads", name="compressed_client")
    pub = c.create_publisher(CompressedImage, "/cmp/image_raw/compressed",
                             __import__("rclpy.qos", fromlist=["x"]).qos_profile_sensor_data)
    try:
        deadline = time.monotonic() + 60
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline and node.alive():
            time.sleep(0.1)
        assert pub.get_subscription_count() > 0, node.output()[-2000:]
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(astronaut_frame(photo), cv2.COLOR_RGB2BGR))

        def send(data: bytes):
            stamp = now_stamp()
            pub.publish(CompressedImage(header=Header(stamp=stamp, frame_id=FRAME), format="jpeg", data=data))
            return stamp

        assert until_logged(node, "dropping image on '/cmp/image_raw/compressed': cannot decode the compressed image",
                            lambda: send(jpeg.tobytes()[:2000]))  # corrupt: cut short
        heads = None
        for _ in range(20):  # no CameraInfo at all: the guessed intrinsics stand in (opted in)
            stamp = send(jpeg.tobytes())
            time.sleep(1 / 15)
            heads = c.heads_for(stamp)
            if heads is not None:
                break
        heads = heads or answered(c, stamp)
        assert heads is not None and len(heads.heads) == 1
        assert 0.3 < heads.heads[0].pose.pose.position.z < 1.5  # the same 60 deg camera it was made with
        assert wait_for_log(node, "using GUESSED intrinsics (60 deg horizontal field of view")
        assert c.wait_until(lambda: any(
            kv.key == "intrinsics" and kv.value == "missing, fallback 60 deg"
            for d in c.diagnostics for s in d.status for kv in s.values), timeout=5.0)
    finally:
        c.close()


def test_without_camera_info_the_node_says_what_it_waits_for_and_publishes_no_pose(ros, photo, camera):
    params = {"wait_warning_period": 0.5, "diagnostics_period": 0.3}
    remaps = {"image": "/noinfo/image_raw", "camera_info": "/noinfo/camera_info"}
    c = CameraClient("/noinfo/image_raw", "/noinfo/camera_info", "/headpose_node_noinfo/heads", name="noinfo_client")
    try:
        with NodeProcess(default_params_file(), params=params, remaps=remaps, name="headpose_node_noinfo") as node:
            c.wait_for_node(node, timeout=60)
            frame = astronaut_frame(photo)
            stamps = []

            def send():
                stamps.append(now_stamp())
                c.publish_frame(frame, camera, stamps[-1], FRAME, send_info=False)  # images only

            # (The client's CameraInfo publisher exists, and publishes nothing.)
            assert until_logged(node, "dropping images: no CameraInfo received yet on '/noinfo/camera_info' "
                                      "(1 publishers)", send)
            assert until_logged(node, "waiting for camera info on '/noinfo/camera_info': no CameraInfo received yet",
                                lambda: time.sleep(0.2))  # the images stop: it says what it waits for
            assert all(c.heads_for(s) is None for s in stamps)
            assert c.wait_until(lambda: any(kv.key == "intrinsics" and kv.value == "missing"
                                            for d in c.diagnostics for s in d.status for kv in s.values), 3.0)
    finally:
        c.close()
