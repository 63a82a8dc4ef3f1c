"""core.models: every network described by data: input tensors, anchors, letterboxing, angle conventions."""

import numpy as np
import pytest

from headpose_ros.core.models import (BLAZEFACE_FULL_RANGE, BLAZEFACE_SHORT_RANGE, FACE_MESH, HOPENET_CONVENTION, WHENET,
                                      ImageInput, letterbox, shrink)


def test_to_tensor_normalises_and_lays_out_channels():
    crop = np.zeros((1, 2, 2, 3), np.uint8)
    crop[..., 0], crop[..., 1], crop[..., 2] = 0, 255, 51
    nchw = ImageInput("x", (2, 2), "NCHW", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).to_tensor(crop)
    assert nchw.shape == (1, 3, 2, 2) and nchw.dtype == np.float32
    np.testing.assert_allclose(nchw[0, :, 0, 0], [-1.0, 1.0, -0.6], atol=1e-6)
    nhwc = ImageInput("x", (2, 2), "NHWC").to_tensor(crop[0])  # one crop without the batch axis
    assert nhwc.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(nhwc[0, 0, 0], [0.0, 1.0, 0.2], atol=1e-6)
    with pytest.raises(ValueError, match="layout"):
        ImageInput("x", (2, 2), "CHW")


def test_imagenet_normalisation_of_whenet():
    white = np.full((1, 224, 224, 3), 255, np.uint8)
    x = WHENET.input.to_tensor(white)
    np.testing.assert_allclose(x[0, :, 0, 0], (1 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
                               rtol=1e-5)


def test_anchor_grids_match_the_detectors_outputs():
    assert len(BLAZEFACE_SHORT_RANGE.anchors.centres(BLAZEFACE_SHORT_RANGE.input.size)) == 896
    full = BLAZEFACE_FULL_RANGE.anchors.centres(BLAZEFACE_FULL_RANGE.input.size)
    assert full.shape == (2304, 2) and full.min() > 0 and full.max() < 1
    np.testing.assert_allclose(full[0], [0.5 / 48, 0.5 / 48])


def test_letterbox_keeps_the_aspect_ratio_and_its_affine_maps_pixel_centres():
    image = np.zeros((480, 640, 3), np.uint8)
    image[0, 0] = 255
    padded, A = letterbox(image, (192, 192))
    assert padded.shape == (192, 192, 3)
    # 640x480 -> 192x144, centred vertically: 24 rows of padding above.
    np.testing.assert_allclose(A @ [319.5, 239.5, 1.0], [95.5, 95.5], atol=1e-9)
    np.testing.assert_allclose(A @ [-0.5, -0.5, 1.0], [-0.5, 23.5], atol=1e-9)
    assert padded[:24].max() == 0 and padded[24:168].max() > 0


def test_shrink_averages_areas():
    checker = np.indices((64, 64)).sum(axis=0) % 2 * 255
    small = shrink(np.repeat(checker[..., None], 3, axis=2).astype(np.uint8), 8, 8)
    assert small.shape == (8, 8, 3) and np.all(np.abs(small.astype(int) - 128) <= 1)  # no aliasing


@pytest.mark.parametrize("ypr", [(0, 0, 0), (30, -10, 5), (-60, 20, -15)])
def test_the_network_convention_round_trips(ypr):
    R = HOPENET_CONVENTION.rotation(ypr)
    np.testing.assert_allclose(HOPENET_CONVENTION.angles_deg(R), ypr, atol=1e-9)


def test_the_face_mesh_crop_is_one_and_a_half_boxes():
    assert FACE_MESH.roi_scale == 1.5 and FACE_MESH.input.size == (192, 192) and FACE_MESH.num_landmarks == 468
