"""ros.diagnostics: sliding-window rates and latencies, drop counts, the health verdict and the /diagnostics message.

Pure functions and a dataclass: every time is given explicitly (`now`)
where the code takes one. health() and diagnostics_values() read the clock
themselves (summary() without `now`); there the rate is checked against the
bounds the clock readings before and after the call allow.
"""

from __future__ import annotations

import math
import re
import time

import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402

from headpose_ros.ros.diagnostics import (ImageLoss, PipelineStats, diagnostics_message, diagnostics_values,  # noqa: E402
                                          health)


def stream(stats: PipelineStats, times, latencies=None, faces=1) -> None:
    """An image received and processed at each of `times`."""
    latencies = latencies or [10.0] * len(times)
    for t, latency in zip(times, latencies):
        stats.on_received(now=t)
        stats.on_processed(latency, faces, now=t)


# -- PipelineStats ------------------------------------------------------------------------------------------------


def test_an_empty_window_has_no_rate_and_no_latency():
    s = PipelineStats().summary(now=100.0)
    assert s["input_rate_hz"] == 0.0 and s["processing_rate_hz"] == 0.0
    assert math.isnan(s["latency_p50_ms"]) and math.isnan(s["latency_p99_ms"])
    assert s["faces"] == 0.0


def test_one_image_has_no_rate_yet():
    stats = PipelineStats()
    stream(stats, [5.0], [12.0], faces=3)
    s = stats.summary(now=5.5)
    assert s["input_rate_hz"] == 0.0 and s["processing_rate_hz"] == 0.0
    assert s["latency_p50_ms"] == 12.0 and s["latency_p99_ms"] == 12.0
    assert s["faces"] == 3.0


def test_rates_count_intervals_up_to_now():
    stats = PipelineStats()
    for k in range(11):  # 0.0, 0.1, ..., 1.0: ten intervals
        stats.on_received(now=k * 0.1)
    for k in range(6):  # every other image processed: five intervals
        stats.on_processed(20.0, 1, now=k * 0.2)
    s = stats.summary(now=1.0)
    assert s["input_rate_hz"] == pytest.approx(10.0)
    assert s["processing_rate_hz"] == pytest.approx(5.0)
    # The rate falls while nothing arrives: ten intervals over two seconds.
    assert stats.summary(now=2.0)["input_rate_hz"] == pytest.approx(5.0)


def test_latency_percentiles_and_the_latest_face_count():
    stats = PipelineStats()
    for t, latency, faces in [(1.0, 40.0, 2), (2.0, 10.0, 2), (3.0, 30.0, 1), (4.0, 20.0, 4)]:
        stats.on_processed(latency, faces, now=t)
    s = stats.summary(now=4.0)
    assert s["latency_p50_ms"] == pytest.approx(25.0)
    assert s["latency_p99_ms"] == pytest.approx(39.7)  # linear between 30 and 40 at 2.97 of 3
    assert s["faces"] == 4.0


def test_the_window_keeps_only_the_last_window_s_seconds():
    stats = PipelineStats(window_s=10.0)
    stream(stats, [0.0, 1.0, 2.0, 3.0, 4.0], latencies=[100.0, 100.0, 5.0, 5.0, 5.0])
    stats.summary(now=12.0)  # 0.0 and 1.0 are more than 10 s old; 2.0 is exactly 10 s old and stays
    assert list(stats.received) == [2.0, 3.0, 4.0]
    assert [p[0] for p in stats.processed] == [2.0, 3.0, 4.0]
    s = stats.summary(now=12.0)
    assert s["latency_p99_ms"] == 5.0  # the slow ones left with their images
    assert s["input_rate_hz"] == pytest.approx(2 / 10.0)
    # Totals are since the start, not per window.
    assert stats.total_received == 5 and stats.total_processed == 5
    stats.summary(now=100.0)
    assert len(stats.received) == 0 and len(stats.processed) == 0


def test_drops_are_counted_by_reason_and_errors_count_as_drops():
    stats = PipelineStats()
    stats.on_dropped("bad image")
    stats.on_dropped("no valid camera info")
    stats.on_dropped("bad image")
    stats.on_error("RuntimeError: boom")
    assert dict(stats.dropped) == {"bad image": 2, "no valid camera info": 1, "processing error": 1}
    assert stats.last_error == "RuntimeError: boom"
    assert stats.consecutive_errors == 1


def test_a_processed_image_ends_a_run_of_errors_but_not_the_last_error():
    stats = PipelineStats()
    stats.on_error("first")
    stats.on_error("second")
    assert stats.consecutive_errors == 2
    stats.on_processed(5.0, 0, now=1.0)
    assert stats.consecutive_errors == 0
    assert stats.last_error == "second"
    assert stats.dropped["processing error"] == 2


# -- health() --------------------------------------------------------------------------------------------------------


def healthy(stats, **changes):
    args = dict(intrinsics="ok", intrinsics_problem="", guessing=False, seconds_since_image=0.1, wait_period=5.0,
                faces=2)
    args.update(changes)
    return health(stats, **args)


def test_three_errors_in_a_row_are_an_error_before_anything_else():
    stats = PipelineStats()
    for k in range(3):
        stats.on_error(f"ValueError: frame {k}")
    level, message = healthy(stats, intrinsics="invalid", intrinsics_problem="K is all zeros",
                             seconds_since_image=None)
    assert level == DiagnosticStatus.ERROR
    assert message == "processing keeps failing: ValueError: frame 2"


def test_two_errors_in_a_row_are_not_yet_an_error():
    stats = PipelineStats()
    stats.on_error("a")
    stats.on_error("b")
    level, _ = healthy(stats)
    assert level == DiagnosticStatus.OK


def test_unusable_intrinsics_are_a_warning_before_no_images():
    level, message = healthy(PipelineStats(), intrinsics="invalid", intrinsics_problem="K is all zeros",
                             seconds_since_image=None)
    assert (level, message) == (DiagnosticStatus.WARN, "camera info: K is all zeros")
    level, message = healthy(PipelineStats(), intrinsics="missing, fallback 60 deg",
                             intrinsics_problem="no CameraInfo received yet", guessing=True)
    assert (level, message) == (DiagnosticStatus.WARN,
                                "camera info: no CameraInfo received yet (using guessed intrinsics)")


@pytest.mark.parametrize("since", [None, 5.01, 60.0])
def test_no_image_for_the_wait_period_is_a_warning(since):
    assert healthy(PipelineStats(), seconds_since_image=since) == (DiagnosticStatus.WARN, "no images")


# -- images lost on the way ------------------------------------------------------------------------------------------


def test_a_camera_info_whose_image_never_came_counts_as_a_lost_image_once_its_grace_is_over():
    loss = ImageLoss(window_s=10.0, grace_s=1.0)
    for k in range(10):  # a 10 Hz camera; every second image lost (DDS fragments)
        loss.on_camera_info((100, k * 100_000_000), now=k * 0.1)
        if k % 2 == 0:
            loss.on_image((100, k * 100_000_000), now=k * 0.1 + 0.03)
    assert loss.lost(now=0.95) == (0, 0)  # none has had its grace yet
    assert loss.lost(now=1.55) == (3, 6)  # stamps 0..5 settled: 1, 3, 5 had no image
    assert loss.lost(now=12.0) == (0, 0)  # all out of the window


def test_images_that_all_arrive_or_a_camera_info_without_stamps_show_no_loss():
    loss = ImageLoss()
    for k in range(20):
        loss.on_camera_info((5, k), now=k * 0.05)
        loss.on_image((5, k), now=k * 0.05 + 0.2)  # late but there
        loss.on_camera_info((0, 0), now=k * 0.05)  # unstamped: cannot be matched, not counted
    assert loss.lost(now=2.5) == (0, 20)


def test_lost_images_are_a_warning_above_a_fifth_of_the_frames():
    level, message = healthy(PipelineStats(), lost=(6, 15))
    assert level == DiagnosticStatus.WARN
    assert message.startswith("images lost on the way: 6 of the last 15 frames came as CameraInfo without their image")
    assert "fastdds_large_images.xml" in message
    assert healthy(PipelineStats(), lost=(3, 15))[0] == DiagnosticStatus.OK  # a fifth: within noise
    assert healthy(PipelineStats(), lost=(2, 2))[0] == DiagnosticStatus.OK  # too few to tell


def test_ok_says_the_rate_and_the_faces():
    stats = PipelineStats()
    level, message = healthy(stats, seconds_since_image=5.0, faces=3)  # exactly the wait period is still fine
    assert (level, message) == (DiagnosticStatus.OK, "0.0 Hz, 3 faces")


def test_ok_reports_the_processing_rate_of_the_window():
    stats = PipelineStats()
    start = time.monotonic() - 2.0
    for k in range(21):  # 20 intervals, the first image 2 s (plus however long this takes) before health()
        stats.on_processed(10.0, 1, now=start + k * 0.1)
    before = time.monotonic()
    level, message = healthy(stats, faces=1)
    after = time.monotonic()
    assert level == DiagnosticStatus.OK
    match = re.fullmatch(r"(\d+\.\d) Hz, 1 faces", message)
    assert match, message
    # Rounded to 0.1 Hz: between 20 intervals over the longest and the shortest possible span.
    assert 20 / (after - start) - 0.05 <= float(match.group(1)) <= 20 / (before - start) + 0.05


# -- diagnostics_values(), diagnostics_message() ---------------------------------------------------------------------


def test_diagnostics_values_name_every_figure_then_drops_then_models():
    stats = PipelineStats()
    now = time.monotonic()
    stream(stats, [now - 0.3, now - 0.2], latencies=[10.0, 30.0], faces=2)
    stats.on_received(now=now - 0.1)
    stats.on_dropped("bad image")
    values = diagnostics_values(stats, "ok", 2, {"backend": "landmarks", "detector": "face_detection_full_range"})
    assert list(values) == [
        "input rate (Hz)", "processing rate (Hz)", "latency p50 (ms)", "latency p99 (ms)", "faces",
        "images received", "images processed", "images dropped", "images lost on the way (window)", "intrinsics",
        "last error", "dropped: bad image", "backend", "detector",
    ]
    assert values["latency p50 (ms)"] == pytest.approx(20.0)
    assert values["latency p99 (ms)"] == pytest.approx(29.8)
    assert (values["faces"], values["images received"], values["images processed"], values["images dropped"]) == (
        2, 3, 2, 1)
    assert values["intrinsics"] == "ok" and values["last error"] == "none"
    assert values["dropped: bad image"] == 1
    assert values["backend"] == "landmarks" and values["detector"] == "face_detection_full_range"
    assert values["input rate (Hz)"] > 0.0 and values["processing rate (Hz)"] > 0.0


def test_diagnostics_values_report_the_last_error():
    stats = PipelineStats()
    stats.on_error("RuntimeError: injected")
    values = diagnostics_values(stats, "invalid", 0, {})
    assert values["last error"] == "RuntimeError: injected"
    assert values["dropped: processing error"] == 1 and values["images dropped"] == 1
    assert math.isnan(values["latency p50 (ms)"])


def test_diagnostics_message_builds_one_status_with_formatted_values():
    stamp = Time(sec=1700000000, nanosec=250)
    values = {"input rate (Hz)": 29.97123, "latency p99 (ms)": float("nan"), "faces": 3, "intrinsics": "ok",
              "enabled": True}
    msg = diagnostics_message(stamp, "headpose_node: head pose", "/headpose_node", DiagnosticStatus.WARN,
                              "no images", values)
    assert isinstance(msg, DiagnosticArray)
    assert msg.header.stamp == stamp
    assert len(msg.status) == 1
    status = msg.status[0]
    assert status.level == DiagnosticStatus.WARN
    assert status.name == "headpose_node: head pose"
    assert status.hardware_id == "/headpose_node"
    assert status.message == "no images"
    assert list(status.values) == [
        KeyValue(key="input rate (Hz)", value="29.97"),
        KeyValue(key="latency p99 (ms)", value="nan"),
        KeyValue(key="faces", value="3"),
        KeyValue(key="intrinsics", value="ok"),
        KeyValue(key="enabled", value="True"),
    ]


def test_the_message_of_real_statistics_carries_every_key():
    stats = PipelineStats()
    stats.on_dropped("no valid camera info")
    level, message = health(stats, intrinsics="missing", intrinsics_problem="no CameraInfo received yet",
                            guessing=False, seconds_since_image=None, wait_period=5.0, faces=0)
    values = diagnostics_values(stats, "missing", 0, {"backend": "hopenet"})
    msg = diagnostics_message(Time(sec=1), "n: head pose", "/n", level, message, values)
    by_key = {kv.key: kv.value for kv in msg.status[0].values}
    assert msg.status[0].level == DiagnosticStatus.WARN
    assert msg.status[0].message == "camera info: no CameraInfo received yet"
    assert by_key["input rate (Hz)"] == "0.00"
    assert by_key["images dropped"] == "1" and by_key["dropped: no valid camera info"] == "1"
    assert by_key["intrinsics"] == "missing" and by_key["backend"] == "hopenet"
    assert by_key["latency p50 (ms)"] == "nan"


def test_faces_found_but_not_measured_are_counted_by_reason_and_warn_when_none_was_measured():
    stats = PipelineStats()
    for reason in ("turned away", "turned away", "implausible distance"):
        stats.on_not_measured(reason)
    period = stats.take_not_measured()
    assert period == {"turned away": 2, "implausible distance": 1} and stats.take_not_measured() == {}
    level, message = healthy(stats, faces=0, not_measured=period)
    assert (level, message) == (DiagnosticStatus.WARN,
                                "faces found but not measured: turned away (2), implausible distance (1)")
    level, message = healthy(stats, faces=1, not_measured=period)
    assert level == DiagnosticStatus.OK and message.endswith("; not measured: turned away (2), implausible distance (1)")
    values = diagnostics_values(stats, "ok", 1, {}, period)
    assert values["not measured (period): turned away"] == 2 and values["not measured (total): turned away"] == 2
