"""Image message fields -> RGB arrays, and CameraInfo fields -> CameraModel (no ROS needed)."""

import cv2
import numpy as np
import pytest

from headpose_ros.ros.image_conversion import ImageConversionError, camera_from_info, image_to_rgb

RGB = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB),
    ("bgr8", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.zeros(RGB.shape[:2], np.uint8)])),
])
def test_colour_encodings(encoding, pixels):
    data = np.ascontiguousarray(pixels).tobytes()
    out = image_to_rgb(encoding, 8, 6, 8 * pixels.shape[2], data)
    np.testing.assert_array_equal(out, RGB)


def test_mono_and_row_padding():
    gray = RGB[:, :, 0]
    padded = np.zeros((6, 12), np.uint8)  # step 12 > width 8
    padded[:, :8] = gray
    out = image_to_rgb("mono8", 8, 6, 12, padded.tobytes())
    assert out.shape == (6, 8, 3)
    np.testing.assert_array_equal(out[:, :, 1], gray)


def test_yuv422_and_bayer_are_converted():
    yuv = cv2.cvtColor(np.ascontiguousarray(RGB[:, :, ::-1]), cv2.COLOR_BGR2YUV)
    uyvy = np.zeros((6, 16), np.uint8)  # U Y V Y per pixel pair
    uyvy[:, 1::2] = yuv[:, :, 0]
    uyvy[:, 0::4] = yuv[:, 0::2, 1]
    uyvy[:, 2::4] = yuv[:, 0::2, 2]
    out = image_to_rgb("yuv422", 8, 6, 16, uyvy.tobytes())
    assert out.shape == (6, 8, 3) and np.abs(out.astype(int) - RGB).mean() < 40
    assert image_to_rgb("bayer_rggb8", 8, 6, 8, RGB[:, :, 0].tobytes()).shape == (6, 8, 3)


@pytest.mark.parametrize("args, fragment", [
    (("16UC1", 8, 6, 16, bytes(96)), "unsupported encoding '16UC1'"),
    (("rgb8", 0, 6, 0, b""), "empty image"),
    (("rgb8", 8, 6, 20, bytes(200)), "step 20 is smaller"),
    (("rgb8", 8, 6, 24, bytes(100)), "truncated data: 100 bytes"),
])
def test_bad_images_are_refused_with_a_reason(args, fragment):
    with pytest.raises(ImageConversionError, match=fragment):
        image_to_rgb(*args)


def test_result_does_not_alias_the_message_buffer():
    data = bytearray(RGB.tobytes())
    out = image_to_rgb("rgb8", 8, 6, 24, data)
    data[0] ^= 0xFF
    assert out[0, 0, 0] == RGB[0, 0, 0]


def test_camera_info_roi_and_binning():
    k = [600.0, 0, 320, 0, 600.0, 240, 0, 0, 1]
    cam = camera_from_info(k, [0.1, 0, 0, 0, 0], 640, 480, "plumb_bob", "cam")
    assert (cam.width, cam.height, cam.fx) == (640, 480, 600)
    binned = camera_from_info(k, [], 640, 480, "plumb_bob", "cam", binning_x=2, binning_y=2)
    assert (binned.width, binned.height, binned.fx, binned.cx) == (320, 240, 300, 160)
    roi = camera_from_info(k, [], 640, 480, "plumb_bob", "cam", roi_x=100, roi_y=50, roi_width=200, roi_height=100)
    assert (roi.width, roi.height, roi.cx, roi.cy) == (200, 100, 220, 190)


def test_compressed_images_decode_and_corrupt_ones_are_refused():
    from headpose_ros.ros.image_conversion import compressed_to_rgb

    yy, xx = np.mgrid[0:48, 0:64]
    smooth = np.dstack([xx * 4, yy * 5, 255 - xx * 2]).astype(np.uint8)  # RGB; JPEG keeps smooth images
    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(smooth[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = compressed_to_rgb("bgr8; jpeg compressed bgr8", jpeg.tobytes())
    assert out.shape == (48, 64, 3) and np.abs(out.astype(int) - smooth).mean() < 3
    ok, png = cv2.imencode(".png", np.ascontiguousarray(RGB[:, :, ::-1]))
    np.testing.assert_array_equal(compressed_to_rgb("png", png.tobytes()), RGB)
    with pytest.raises(ImageConversionError, match="cannot decode the compressed image"):
        compressed_to_rgb("jpeg", jpeg.tobytes()[: len(jpeg) // 3])  # truncated
    with pytest.raises(ImageConversionError, match="cannot decode"):
        compressed_to_rgb("jpeg", b"\x00garbage" * 40)
    with pytest.raises(ImageConversionError, match="empty compressed image"):
        compressed_to_rgb("jpeg", b"")
    with pytest.raises(ImageConversionError, match="compressed depth"):
        compressed_to_rgb("16UC1; compressedDepth png", png.tobytes())
