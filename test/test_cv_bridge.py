"""Images through cv_bridge (a ROS 2 install) and through the package's own converter give the same arrays.

The node converts with cv_bridge where it is importable and falls back to its own converter where it is
not (PyPI has no ROS 2 cv_bridge: the `cv-bridge` there is ROS 1's) or where cv_bridge refuses an encoding.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from headpose_ros.ros.image_conversion import (SUPPORTED_ENCODINGS, ImageDecoder, compressed_to_rgb,  # noqa: E402
                                               image_to_rgb)


def message(photo, encoding: str, padding: int = 4) -> Image:
    """A real photo (a 64 x 48 crop of the astronaut) in `encoding`, rows padded by `padding` bytes."""
    rgb = np.ascontiguousarray(photo("astronaut")[40:88, 180:244])
    h, w = rgb.shape[:2]
    if encoding in ("rgb8",):
        pixels = rgb
    elif encoding in ("bgr8", "8UC3"):
        pixels = rgb[:, :, ::-1]
    elif encoding == "rgba8":
        pixels = np.dstack([rgb, np.full((h, w), 200, np.uint8)])
    elif encoding == "bgra8":
        pixels = np.dstack([rgb[:, :, ::-1], np.full((h, w), 200, np.uint8)])
    elif encoding in ("mono8", "8UC1") or encoding.startswith("bayer_"):
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # any 8-bit plane will do for a mosaic
    else:  # packed YUV 4:2:2: two bytes a pixel
        pixels = np.random.default_rng(0).integers(16, 235, (h, w * 2), dtype=np.uint8)
    rows = np.ascontiguousarray(pixels).reshape(h, -1)
    padded = np.zeros((h, rows.shape[1] + padding), np.uint8)
    padded[:, : rows.shape[1]] = rows
    return Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=padded.shape[1], data=padded.tobytes())


def test_every_supported_encoding_gives_the_same_array_through_both_paths(photo):
    cv_bridge = pytest.importorskip("cv_bridge", reason="cv_bridge comes with a ROS 2 install; the PyPI world has "
                                                        "none, and the node uses its own converter there")
    bridge = cv_bridge.CvBridge()
    decoder = ImageDecoder()
    assert decoder.backend == "cv_bridge"
    refused = []
    for encoding in SUPPORTED_ENCODINGS:
        msg = message(photo, encoding)
        own = image_to_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data)
        try:
            bridged = bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
        except cv_bridge.CvBridgeError:
            refused.append(encoding)  # the node falls back to its own converter for these
        else:
            np.testing.assert_array_equal(bridged, own, err_msg=encoding)
        np.testing.assert_array_equal(decoder.image(msg), own, err_msg=encoding)
    assert len(refused) < len(SUPPORTED_ENCODINGS) // 2, refused


@pytest.mark.parametrize("extension, fmt", [(".jpg", "bgr8; jpeg compressed bgr8"), (".png", "bgr8; png compressed bgr8")])
def test_compressed_images_give_the_same_array_through_both_paths(photo, extension, fmt):
    cv_bridge = pytest.importorskip("cv_bridge", reason="cv_bridge comes with a ROS 2 install")
    ok, encoded = cv2.imencode(extension, photo("astronaut")[:, :, ::-1])
    msg = CompressedImage(format=fmt, data=encoded.tobytes())
    own = compressed_to_rgb(msg.format, msg.data)
    np.testing.assert_array_equal(cv_bridge.CvBridge().compressed_imgmsg_to_cv2(msg, desired_encoding="rgb8"), own)
    np.testing.assert_array_equal(ImageDecoder().compressed(msg), own)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
def test_without_cv_bridge_the_decoder_is_the_converter(photo, encoding):
    decoder = ImageDecoder(use_cv_bridge=False)
    assert decoder.backend.startswith("headpose_ros's converter")
    msg = message(photo, encoding)
    rgb = decoder.image(msg)
    np.testing.assert_array_equal(rgb, image_to_rgb(msg.encoding, msg.width, msg.height, msg.step, msg.data))
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8
    if encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "8UC3"):  # exact colour: the padding is dropped
        np.testing.assert_array_equal(rgb, photo("astronaut")[40:88, 180:244])
