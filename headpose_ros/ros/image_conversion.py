"""sensor_msgs/Image, CompressedImage and CameraInfo to numpy and CameraModel.

ImageDecoder converts with ROS's cv_bridge where it is installed (a ROS 2
install), and with this module's own converter where it is not (the PyPI
world has no ROS 2 cv_bridge), or where cv_bridge refuses an encoding that
the converter takes. Both give the same arrays. The converter's functions take
message fields (no rclpy import), so they are tested, and fuzzed, without ROS.
Every failure is an ImageConversionError whose message names the problem and
what would fix it.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.camera import CameraModel


class ImageConversionError(ValueError):
    """An Image message that cannot be turned into an RGB image."""


# encoding -> (channels, OpenCV conversion to RGB, or None when already RGB)
_COLOUR = {
    "rgb8": (3, None),
    "bgr8": (3, cv2.COLOR_BGR2RGB),
    "rgba8": (4, cv2.COLOR_RGBA2RGB),
    "bgra8": (4, cv2.COLOR_BGRA2RGB),
    "mono8": (1, cv2.COLOR_GRAY2RGB),
    "8UC1": (1, cv2.COLOR_GRAY2RGB),
    "8UC3": (3, cv2.COLOR_BGR2RGB),  # OpenCV's own order
    # 2 bytes per pixel, packed YUV 4:2:2
    "yuv422": (2, cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, cv2.COLOR_YUV2RGB_YUY2),
    "yuyv": (2, cv2.COLOR_YUV2RGB_YUY2),
    # Bayer mosaics (OpenCV names the pattern by the second row's first two pixels).
    "bayer_rggb8": (1, cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": (1, cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": (1, cv2.COLOR_BayerGB2RGB),
}
SUPPORTED_ENCODINGS = tuple(_COLOUR)


def image_to_rgb(encoding: str, width: int, height: int, step: int, data) -> np.ndarray:
    """The (height, width, 3) uint8 RGB image of an Image message's fields.

    data: bytes-like (bytes, array.array or a numpy buffer); it is not copied
    where the layout allows, and the result never aliases it.
    """
    if encoding not in _COLOUR:
        raise ImageConversionError(
            f"unsupported encoding '{encoding}' (supported: {', '.join(SUPPORTED_ENCODINGS)}); "
            "depth and 16-bit images carry no face to detect, publish a colour or mono8 image"
        )
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"empty image ({width}x{height})")
    channels, code = _COLOUR[encoding]
    if channels == 2 and width % 2:
        raise ImageConversionError(f"{encoding} packs pixels in pairs, so its width must be even, not {width}")
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width x bytes per pixel = {width} x {channels} = {row_bytes}"
        )
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if buf.size < step * height:
        raise ImageConversionError(
            f"truncated data: {buf.size} bytes for {height} rows of step {step} (expected {step * height})"
        )
    rows = buf[: step * height].reshape(height, step)[:, :row_bytes]
    if channels == 1:
        pixels = rows
    else:
        pixels = rows.reshape(height, width, channels)
    if code is None:
        return np.array(pixels, order="C", copy=True)
    return cv2.cvtColor(np.ascontiguousarray(pixels), code)


def compressed_to_rgb(fmt: str, data) -> np.ndarray:
    """The (h, w, 3) uint8 RGB image of a sensor_msgs/CompressedImage (JPEG or PNG, as image_transport sends).

    fmt: the message's ``format`` field, e.g. "bgr8; jpeg compressed bgr8" or "jpeg".
    Depth images (compressedDepth) and anything OpenCV cannot decode are refused.
    """
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ImageConversionError(f"compressed depth image ('{fmt}') carries no face to detect: "
                                   "subscribe to the camera's colour stream")
    buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    if buf.size == 0:
        raise ImageConversionError("empty compressed image (0 bytes)")
    try:
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        decoded = None
        reason = str(exc).strip().splitlines()[-1]
    else:
        reason = "not a JPEG or PNG OpenCV can decode (corrupt or truncated?)"
    if decoded is None or decoded.size == 0:
        raise ImageConversionError(f"cannot decode the compressed image ({buf.size} bytes, format '{fmt}'): {reason}")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


class ImageDecoder:
    """Image and CompressedImage messages to (h, w, 3) uint8 RGB arrays; `backend` says which converter."""

    def __init__(self, use_cv_bridge: bool = True):
        self._bridge = None
        self.backend = "headpose_ros's converter (cv_bridge is not installed)"
        if use_cv_bridge:
            try:
                from cv_bridge import CvBridge
            except ImportError:
                return
            self._bridge = CvBridge()
            self.backend = "cv_bridge"

    def image(self, msg) -> np.ndarray:
        if self._bridge is not None:
            try:
                return np.ascontiguousarray(self._bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
            except Exception:  # an encoding or a layout cv_bridge refuses: the converter takes it, or says why not
                pass
        return image_to_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data)

    def compressed(self, msg) -> np.ndarray:
        if self._bridge is not None and "compresseddepth" not in msg.format.lower().replace(" ", ""):
            try:
                return np.ascontiguousarray(self._bridge.compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8"))
            except Exception:
                pass
        return compressed_to_rgb(msg.format, msg.data)


def camera_from_info_msg(msg) -> CameraModel:
    """camera_from_info of a sensor_msgs/CameraInfo message (rclpy's or rosbags')."""
    return camera_from_info(msg.k, msg.d, msg.width, msg.height, msg.distortion_model, msg.header.frame_id,
                            msg.binning_x, msg.binning_y, msg.roi.x_offset, msg.roi.y_offset, msg.roi.width,
                            msg.roi.height)


def camera_from_info(
    k, d, width: int, height: int, distortion_model: str, frame_id: str,
    binning_x: int = 0, binning_y: int = 0, roi_x: int = 0, roi_y: int = 0, roi_width: int = 0, roi_height: int = 0,
) -> CameraModel:
    """CameraModel of a CameraInfo's fields, for the image the camera actually publishes.

    K in CameraInfo describes the full-resolution sensor; a region of interest
    shifts the principal point and binning divides the focal lengths.
    """
    K = np.full(9, np.nan) if len(k) != 9 else np.array(k, dtype=np.float64)  # 9 in every CameraInfo
    K = K.reshape(3, 3).copy()
    w, h = int(width), int(height)
    if roi_width > 0 and roi_height > 0:
        K[0, 2] -= roi_x
        K[1, 2] -= roi_y
        w, h = int(roi_width), int(roi_height)
    bx, by = max(1, int(binning_x)), max(1, int(binning_y))
    if bx > 1 or by > 1:
        K[0, :] /= bx
        K[1, :] /= by
        w, h = w // bx, h // by
    cropped = (roi_width > 0 and roi_height > 0) or bx > 1 or by > 1
    return CameraModel(K=K, D=np.array(d, dtype=np.float64), width=w, height=h,
                       frame_id=frame_id, distortion_model=distortion_model or "plumb_bob", exact_size=cropped)
