"""Property-based: random Image, CompressedImage and CameraInfo fields never raise out of the conversion layer.

Everything the node receives goes through these functions first. For any
fields a publisher can send, each either converts (and then the result has
the promised shape and type) or is refused with ImageConversionError /
CameraModelError whose message is one non-empty line. Nothing else escapes.
"""

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headpose_ros.core.camera import CameraModel, CameraModelError
from headpose_ros.ros.image_conversion import (
    SUPPORTED_ENCODINGS, ImageConversionError, camera_from_info, compressed_to_rgb, image_to_rgb)

ENCODINGS = st.sampled_from(list(SUPPORTED_ENCODINGS) + ["16UC1", "32FC1", "mono16", "bgr16", "", "RGB8", "jpeg"])
SIZES = st.integers(min_value=-2, max_value=64)
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def one_line(exc: Exception) -> bool:
    text = str(exc)
    return bool(text) and "\n" not in text


CHANNELS = {"rgba8": 4, "bgra8": 4, "rgb8": 3, "bgr8": 3, "8UC3": 3, "yuv422": 2, "uyvy": 2,
            "yuv422_yuy2": 2, "yuyv": 2}


@FUZZ
@given(encoding=ENCODINGS, width=SIZES, height=SIZES, pad=st.integers(-4, 6), slack=st.integers(-8, 8),
       fill=st.integers(0, 255))
def test_any_image_message_converts_or_is_refused(encoding, width, height, pad, slack, fill):
    # Steps and data lengths near the consistent ones, where conversion code has its edge cases.
    step = width * CHANNELS.get(encoding, 1) + pad
    data = bytes([fill]) * max(0, step * height + slack)
    try:
        rgb = image_to_rgb(encoding, width, height, step, data)
    except ImageConversionError as exc:
        assert one_line(exc)
        return
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8


@FUZZ
@given(encoding=st.sampled_from(SUPPORTED_ENCODINGS), width=st.integers(1, 40), height=st.integers(1, 40),
       pad=st.integers(0, 7), seed=st.integers(0, 2**32 - 1))
def test_every_well_formed_image_converts(encoding, width, height, pad, seed):
    """The other side: a message with a consistent step and enough data is always accepted."""
    channels = CHANNELS.get(encoding, 1)
    width += width % 2 if channels == 2 else 0  # packed 4:2:2 comes in pixel pairs
    step = width * channels + pad
    data = np.random.default_rng(seed).integers(0, 256, step * height, dtype=np.uint8).tobytes()
    assert image_to_rgb(encoding, width, height, step, data).shape == (height, width, 3)


@FUZZ
@given(fmt=st.sampled_from(["jpeg", "png", "bgr8; jpeg compressed bgr8", "16UC1; compressedDepth png", ""]),
       data=st.binary(max_size=2048), cut=st.floats(0.0, 1.0))
def test_any_compressed_image_decodes_or_is_refused(fmt, data, cut):
    # Half the cases start as a real JPEG, then cut short or with random bytes appended: decoders' edge cases.
    ok, real = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))
    payload = real.tobytes()[: int(len(real) * cut)] + data if cut > 0.5 else data
    try:
        rgb = compressed_to_rgb(fmt, payload)
    except ImageConversionError as exc:
        assert one_line(exc)
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8


@FUZZ
@given(k=st.lists(FLOATS, min_size=0, max_size=12), d=st.lists(FLOATS, max_size=16),
       width=st.integers(0, 5000), height=st.integers(0, 5000),
       model=st.sampled_from(["plumb_bob", "rational_polynomial", "equidistant", "", "fisheye"]),
       binning=st.tuples(st.integers(0, 8), st.integers(0, 8)),
       roi=st.tuples(st.integers(0, 4000), st.integers(0, 4000), st.integers(0, 5000), st.integers(0, 5000)),
       image=st.tuples(st.integers(1, 4000), st.integers(1, 4000)))
def test_any_camera_info_is_usable_or_named_unusable(k, d, width, height, model, binning, roi, image):
    camera = camera_from_info(k, d, width, height, model, "cam", *binning, *roi)
    problems = camera.problems()
    assert all(one_line(Exception(p)) for p in problems)
    try:
        camera.validated()
        fitted = camera.fitted_to(*image)
    except CameraModelError as exc:
        assert one_line(exc)
        return
    assert not problems
    assert isinstance(fitted, CameraModel) and (fitted.width, fitted.height) == image
    assert np.all(np.isfinite(fitted.K)) and fitted.fx > 0 and fitted.fy > 0
