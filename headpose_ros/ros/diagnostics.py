"""Rates, latencies and drop counts of the node, reported on /diagnostics."""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


@dataclass
class PipelineStats:
    """Sliding-window statistics over the last `window_s` seconds (wall clock)."""

    window_s: float = 10.0
    received: collections.deque = field(default_factory=collections.deque)  # wall times of incoming images
    processed: collections.deque = field(default_factory=collections.deque)  # (wall time, latency ms, faces)
    dropped: collections.Counter = field(default_factory=collections.Counter)  # reason -> count, since start
    # Faces found but not measured (no pose published for them), by reason: since the last report, and since start.
    not_measured: collections.Counter = field(default_factory=collections.Counter)
    total_not_measured: collections.Counter = field(default_factory=collections.Counter)
    total_received: int = 0
    total_processed: int = 0
    last_error: str = ""
    last_error_time: float = 0.0
    consecutive_errors: int = 0

    def on_received(self, now: float | None = None) -> None:
        self.total_received += 1
        self.received.append(time.monotonic() if now is None else now)

    def on_processed(self, latency_ms: float, faces: int, now: float | None = None) -> None:
        self.total_processed += 1
        self.consecutive_errors = 0
        self.processed.append((time.monotonic() if now is None else now, latency_ms, faces))

    def on_not_measured(self, reason: str) -> None:
        self.not_measured[reason] += 1
        self.total_not_measured[reason] += 1

    def take_not_measured(self) -> collections.Counter:
        """The faces not measured since the last call, by reason (and start counting anew)."""
        period, self.not_measured = self.not_measured, collections.Counter()
        return period

    def on_dropped(self, reason: str) -> None:
        self.dropped[reason] += 1

    def on_error(self, message: str) -> None:
        self.consecutive_errors += 1
        self.last_error = message
        self.last_error_time = time.monotonic()
        self.dropped["processing error"] += 1

    def _trim(self, now: float) -> None:
        while self.received and now - self.received[0] > self.window_s:
            self.received.popleft()
        while self.processed and now - self.processed[0][0] > self.window_s:
            self.processed.popleft()

    def summary(self, now: float | None = None) -> dict[str, float]:
        now = time.monotonic() if now is None else now
        self._trim(now)
        latencies = np.array([p[1] for p in self.processed]) if self.processed else np.zeros(0)
        return {
            "input_rate_hz": _rate(self.received, now, self.window_s),
            "processing_rate_hz": _rate([p[0] for p in self.processed], now, self.window_s),
            "latency_p50_ms": float(np.percentile(latencies, 50)) if latencies.size else float("nan"),
            "latency_p99_ms": float(np.percentile(latencies, 99)) if latencies.size else float("nan"),
            "faces": float(self.processed[-1][2]) if self.processed else 0.0,
        }


class ImageLoss:
    """Images lost before they reach the node, seen from the CameraInfo that camera drivers publish with every
    image, at the image's stamp: a CameraInfo whose stamp no image matched within `grace_s` marks a lost image.

    Large images are what a DDS transport loses (each is many UDP fragments) while the small CameraInfo of the
    same frame arrives, so this counts exactly the losses the input rate alone cannot show. Frames the node
    skips by design (it keeps only the newest image while busy) skip their CameraInfo too, and are not counted.
    A camera that publishes CameraInfo less often than images never shows a loss.
    """

    def __init__(self, window_s: float = 10.0, grace_s: float = 1.0):
        self.window_s, self.grace_s = window_s, grace_s
        self._infos: collections.deque = collections.deque()  # (wall time, stamp) of each CameraInfo
        self._images: dict = {}  # stamp -> wall time of each image

    def on_camera_info(self, stamp: tuple[int, int], now: float | None = None) -> None:
        self._infos.append((time.monotonic() if now is None else now, stamp))

    def on_image(self, stamp: tuple[int, int], now: float | None = None) -> None:
        self._images[stamp] = time.monotonic() if now is None else now

    def lost(self, now: float | None = None) -> tuple[int, int]:
        """(CameraInfo stamps without an image, CameraInfo stamps) over the window, those younger than the grace
        period left for later."""
        now = time.monotonic() if now is None else now
        while self._infos and now - self._infos[0][0] > self.window_s:
            self._infos.popleft()
        for stamp in [s for s, t in self._images.items() if now - t > self.window_s + self.grace_s]:
            del self._images[stamp]
        settled = [stamp for t, stamp in self._infos if now - t >= self.grace_s and stamp != (0, 0)]
        return sum(1 for stamp in settled if stamp not in self._images), len(settled)


def _rate(times, now: float, window_s: float) -> float:
    times = list(times)
    if len(times) < 2:
        return 0.0
    span = max(now - times[0], 1e-9)
    return (len(times) - 1) / min(span, window_s) if span > 0 else 0.0


# Warn when more than this share of the window's frames (and at least LOST_MIN of them) never arrived.
LOST_SHARE, LOST_MIN = 0.2, 3


def health(stats: PipelineStats, *, intrinsics: str, intrinsics_problem: str, guessing: bool,
           seconds_since_image: float | None, wait_period: float, faces: int,
           not_measured: dict[str, int] | None = None, lost: tuple[int, int] = (0, 0)) -> tuple[bytes, str]:
    """The node's diagnostic level and one-line message, worst first.

    ERROR: processing failed three times in a row. WARN: no usable intrinsics
    (with or without the guessed fallback), no image for `wait_period`,
    images lost on the way (lost: (frames whose CameraInfo came without their
    image, frames), see ImageLoss), or faces found in this period but none
    measured in the latest image (with the reasons: not_measured, reason ->
    count). OK otherwise, with the rate, the faces of the latest image and
    how many were found but not measured.
    """
    not_measured = not_measured or {}
    reasons = ", ".join(f"{reason} ({count})" for reason, count in sorted(not_measured.items(), key=lambda kv: -kv[1]))
    if stats.consecutive_errors >= 3:
        return DiagnosticStatus.ERROR, f"processing keeps failing: {stats.last_error}"
    if intrinsics != "ok":
        guessed = " (using guessed intrinsics)" if guessing else ""
        return DiagnosticStatus.WARN, f"camera info: {intrinsics_problem}{guessed}"
    if seconds_since_image is None or seconds_since_image > wait_period:
        return DiagnosticStatus.WARN, "no images"
    if lost[0] >= LOST_MIN and lost[0] > LOST_SHARE * lost[1]:
        return DiagnosticStatus.WARN, (
            f"images lost on the way: {lost[0]} of the last {lost[1]} frames came as CameraInfo without their "
            "image (large images over DDS: use config/fastdds_large_images.xml, or image_transport: compressed)")
    if reasons and faces == 0:
        return DiagnosticStatus.WARN, f"faces found but not measured: {reasons}"
    rate = f"{stats.summary()['processing_rate_hz']:.1f} Hz, {faces} faces"
    return DiagnosticStatus.OK, rate + (f"; not measured: {reasons}" if reasons else "")


def diagnostics_values(stats: PipelineStats, intrinsics: str, faces: int, models: dict[str, str],
                       not_measured: dict[str, int] | None = None, lost: tuple[int, int] = (0, 0)) -> dict:
    """The key/values of the node's status: rates, latencies, counts, drops by reason, faces found but not
    measured by reason (this period's, not_measured, and since start), intrinsics, models."""
    s = stats.summary()
    values = {
        "input rate (Hz)": s["input_rate_hz"],
        "processing rate (Hz)": s["processing_rate_hz"],
        "latency p50 (ms)": s["latency_p50_ms"],
        "latency p99 (ms)": s["latency_p99_ms"],
        "faces": faces,
        "images received": stats.total_received,
        "images processed": stats.total_processed,
        "images dropped": sum(stats.dropped.values()),
        "images lost on the way (window)": f"{lost[0]} of {lost[1]}",
        "intrinsics": intrinsics,
        "last error": stats.last_error or "none",
    }
    values.update({f"dropped: {k}": v for k, v in stats.dropped.items()})
    values.update({f"not measured (period): {k}": v for k, v in (not_measured or {}).items()})
    values.update({f"not measured (total): {k}": v for k, v in stats.total_not_measured.items()})
    values.update(models)
    return values


def diagnostics_message(stamp, name: str, hardware_id: str, level: bytes, message: str, values: dict) -> DiagnosticArray:
    """One DiagnosticStatus; level is DiagnosticStatus.OK, WARN, ERROR or STALE."""
    status = DiagnosticStatus(
        level=level,
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=[KeyValue(key=str(k), value=_fmt(v)) for k, v in values.items()],
    )
    array = DiagnosticArray(status=[status])
    array.header.stamp = stamp
    return array


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)
