"""ros.intrinsics: the camera model each image is solved with, from the latest usable CameraInfo or the opt-in guess.

An IntrinsicsSource on a real in-process node is fed real sensor_msgs/CameraInfo
messages through its subscription callback (what the executor would call),
so each case is exactly the message described; no DDS traffic is needed
except to count a real publisher on the topic.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo  # noqa: E402

from headpose_ros.core.camera import CameraModel  # noqa: E402
from headpose_ros.tools.ros_harness import camera_info_msg, stamp_now  # noqa: E402
from headpose_ros.ros.intrinsics import IntrinsicsSource  # noqa: E402

pytestmark = pytest.mark.ros

FRAME = "intrinsics_camera_optical_frame"
QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


class Source:
    """An IntrinsicsSource on its own node and topic, with the warnings it gave."""

    def __init__(self, fallback_fov_deg: float = 0.0):
        suffix = uuid.uuid4().hex[:8]
        self.node = Node(f"test_intrinsics_{suffix}")
        self.warnings: list[str] = []
        self.intrinsics = IntrinsicsSource(self.node, f"/intrinsics_{suffix}/camera_info", QOS, fallback_fov_deg,
                                           self.warnings.append)

    def feed(self, msg: CameraInfo) -> None:
        self.intrinsics._on_camera_info(msg)


@pytest.fixture
def make_source(ros):
    made: list[Source] = []

    def make(fallback_fov_deg: float = 0.0) -> Source:
        made.append(Source(fallback_fov_deg))
        return made[-1]

    yield make
    for s in made:
        s.node.destroy_node()


def calibrated(width=640, height=480) -> CameraModel:
    """A calibrated camera with distortion and an off-centre principal point."""
    K = np.array([[600.0, 0.0, 330.0], [0.0, 610.0, 235.0], [0.0, 0.0, 1.0]])
    return CameraModel(K, np.array([0.1, -0.05, 0.001, 0.002, 0.0]), width, height, FRAME)


def info(camera: CameraModel | None = None, frame_id: str = FRAME, **fields) -> CameraInfo:
    msg = camera_info_msg(camera or calibrated(), stamp_now(), frame_id)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def zero_k() -> CameraInfo:
    return info(k=[0.0] * 9)


def nan_k() -> CameraInfo:
    k = [float(v) for v in calibrated().K.ravel()]
    k[0] = float("nan")
    return info(k=k)


def test_before_any_camera_info_there_is_none_and_it_is_missing(make_source):
    s = make_source().intrinsics
    assert s.camera is None
    assert s.received is False
    assert s.problem == "no CameraInfo received yet"
    assert s.state() == "missing"
    assert s.topic.endswith("/camera_info") and s.topic.startswith("/intrinsics_")


def test_a_valid_camera_info_gives_its_camera(make_source):
    source = make_source()
    source.feed(info())
    s = source.intrinsics
    assert s.received is True
    assert s.problem == "" and s.state() == "ok"
    assert s.frame_id == FRAME
    np.testing.assert_array_equal(s.camera.K, calibrated().K)
    np.testing.assert_array_equal(s.camera.D, [0.1, -0.05, 0.001, 0.002, 0.0])
    assert (s.camera.width, s.camera.height, s.camera.frame_id) == (640, 480, FRAME)
    assert s.camera.distortion_model == "plumb_bob"
    assert source.warnings == []


def test_an_all_zero_k_is_refused_and_said(make_source):
    source = make_source()
    source.feed(zero_k())
    s = source.intrinsics
    assert s.camera is None
    assert s.problem == "K is all zeros (the camera is not calibrated)"
    assert s.state() == "invalid"
    assert source.warnings == [f"refusing camera info on '{s.topic}': K is all zeros (the camera is not calibrated); "
                               "no poses until a calibrated CameraInfo arrives"]


def test_a_nan_in_k_is_refused(make_source):
    source = make_source()
    source.feed(nan_k())
    assert source.intrinsics.camera is None
    assert source.intrinsics.problem == "K contains NaN or infinite values"
    assert source.intrinsics.state() == "invalid"


def test_every_problem_of_a_message_is_named(make_source):
    source = make_source()
    source.feed(info(k=[0.0] * 9, d=[float("nan")] * 5))
    assert source.intrinsics.problem == ("K is all zeros (the camera is not calibrated); "
                                         "D contains NaN or infinite values")


def test_a_refused_message_takes_the_previous_intrinsics_out_of_use(make_source):
    source = make_source()
    source.feed(info())
    assert source.intrinsics.state() == "ok"
    source.feed(zero_k())
    s = source.intrinsics
    assert s.camera is None and s.state() == "invalid"
    assert s.camera_for(640, 480, FRAME) is None
    source.feed(info())  # calibrated again
    assert s.state() == "ok" and s.problem == ""
    np.testing.assert_array_equal(s.camera.K, calibrated().K)


def roi(msg):
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 100, 40, 320, 240
    return msg


@pytest.mark.parametrize("message, K", [
    # A region of interest shifts the principal point and sets the size.
    (lambda: roi(info()), [[600.0, 0.0, 230.0], [0.0, 610.0, 195.0], [0.0, 0.0, 1.0]]),
    # Binning divides the focal lengths, the principal point and the size.
    (lambda: info(binning_x=2, binning_y=2), [[300.0, 0.0, 165.0], [0.0, 305.0, 117.5], [0.0, 0.0, 1.0]]),
], ids=["roi", "binning"])
def test_roi_and_binning_describe_the_published_image(make_source, message, K):
    source = make_source()
    source.feed(message())
    camera = source.intrinsics.camera
    np.testing.assert_allclose(camera.K, K)
    assert (camera.width, camera.height) == (320, 240)


@pytest.mark.parametrize("message", [lambda: roi(info()), lambda: info(binning_x=2, binning_y=2)],
                         ids=["roi", "binning"])
def test_with_roi_or_binning_a_differently_sized_image_is_not_taken_for_a_resize(make_source, message):
    """Before, a CameraInfo with a 320x240 ROI and a 160x120 image was scaled as a resize: a guess, never said."""
    from headpose_ros.core.camera import CameraModelError

    source = make_source()
    source.feed(message())
    camera = source.intrinsics.camera
    assert camera.fitted_to(320, 240) is camera
    with pytest.raises(CameraModelError, match="region of interest or binning.*320x240 images but the image is 160x120"):
        camera.fitted_to(160, 120)
    # Without them, a pure resize is still one (a driver publishing a scaled stream with the sensor's CameraInfo).
    source.feed(info())
    assert source.intrinsics.camera.fitted_to(320, 240).fx == pytest.approx(calibrated().fx / 2)


def test_binning_one_changes_nothing(make_source):
    source = make_source()
    source.feed(info(binning_x=1, binning_y=1))
    np.testing.assert_array_equal(source.intrinsics.camera.K, calibrated().K)
    assert (source.intrinsics.camera.width, source.intrinsics.camera.height) == (640, 480)


def test_camera_for_returns_the_camera_infos_camera_whatever_the_image_frame(make_source):
    source = make_source()
    source.feed(info())
    s = source.intrinsics
    assert s.camera_for(640, 480, FRAME) is s.camera
    # A different image frame is warned about in the log, and the calibration still used.
    assert s.camera_for(640, 480, "another_frame") is s.camera


def test_camera_for_without_camera_info_and_without_fallback_is_none(make_source):
    s = make_source(fallback_fov_deg=0.0).intrinsics
    assert s.camera_for(640, 480, FRAME) is None
    assert s.state() == "missing"


def test_camera_for_guesses_an_ideal_camera_when_the_fallback_is_on(make_source):
    source = make_source(fallback_fov_deg=60.0)
    s = source.intrinsics
    guessed = s.camera_for(800, 600, "guess_frame")
    expected = CameraModel.from_field_of_view(800, 600, 60.0, "guess_frame")
    np.testing.assert_array_equal(guessed.K, expected.K)
    assert guessed.K[0, 0] == pytest.approx(400.0 / np.tan(np.radians(30.0)))
    assert (guessed.width, guessed.height, guessed.frame_id) == (800, 600, "guess_frame")
    assert not np.any(guessed.D)
    assert s.camera is None  # a guess is never remembered as the camera's calibration
    assert s.state() == "missing, fallback 60 deg"


def test_the_fallback_stands_in_for_a_refused_camera_info_too(make_source):
    source = make_source(fallback_fov_deg=72.5)
    source.feed(nan_k())
    s = source.intrinsics
    assert s.state() == "invalid, fallback 72.5 deg"
    guessed = s.camera_for(640, 480, FRAME)
    np.testing.assert_array_equal(guessed.K, CameraModel.from_field_of_view(640, 480, 72.5, FRAME).K)
    # A calibrated CameraInfo wins over the guess.
    source.feed(info())
    assert s.state() == "ok"
    assert s.camera_for(640, 480, FRAME) is s.camera
    np.testing.assert_array_equal(s.camera.K, calibrated().K)


def test_waiting_message_says_what_is_missing_and_counts_publishers(make_source, ros):
    source = make_source()
    s = source.intrinsics
    assert s.waiting_message() == f"waiting for camera info on '{s.topic}': no CameraInfo received yet (0 publishers)"
    source.feed(zero_k())
    assert s.waiting_message() == (f"waiting for camera info on '{s.topic}': K is all zeros (the camera is not "
                                   "calibrated) (0 publishers)")
    camera_node = Node(f"test_intrinsics_camera_{uuid.uuid4().hex[:8]}")
    try:
        camera_node.create_publisher(CameraInfo, s.topic, QOS)
        deadline = time.monotonic() + 10.0
        while source.node.count_publishers(s.topic) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.waiting_message().endswith("(the camera is not calibrated) (1 publishers)")
    finally:
        camera_node.destroy_node()
    source.feed(info())
    assert s.waiting_message() is None
