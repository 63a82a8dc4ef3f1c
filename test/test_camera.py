"""Camera intrinsics: validation, YAML files, resizing."""

import numpy as np
import pytest
import yaml

from headpose_ros.core.camera import CameraModel, CameraModelError

K = [[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]]


@pytest.mark.parametrize("K, D, model, fragment", [
    (np.zeros((3, 3)), [], "plumb_bob", "all zeros"),
    ([[np.nan, 0, 1], [0, 1, 1], [0, 0, 1]], [], "plumb_bob", "NaN"),
    ([[-5, 0, 1], [0, 5, 1], [0, 0, 1]], [], "plumb_bob", "fx=-5"),
    (K, [0.1, np.inf, 0, 0, 0], "plumb_bob", "D contains"),
    (K, [0.1, 0.1, 0.1, 0.1], "equidistant", "not supported"),
    (K, [0.1, 0.1, 0.1], "plumb_bob", "3 coefficients"),
])
def test_unusable_intrinsics_are_named(K, D, model, fragment):
    cam = CameraModel(K, D, 640, 480, distortion_model=model)
    assert any(fragment in p for p in cam.problems())
    with pytest.raises(CameraModelError, match=fragment):
        cam.validated()


@pytest.mark.parametrize("K, fragment", [
    ([[1e9, 0, 319.5], [0, 1e9, 239.5], [0, 0, 1]], "horizontal field of view is 3.67e-05 deg"),
    ([[0.5, 0, 319.5], [0, 0.5, 239.5], [0, 0, 1]], "field of view is 180 deg"),  # focal length in mm?
    ([[5000, 0, 319.5], [0, 500, 239.5], [0, 0, 1]], "fx / fy = 10"),
    ([[500, 0, 5000], [0, 500, 239.5], [0, 0, 1]], "principal point cx=5000"),
    ([[500, 0, 319.5], [0, 500, -300], [0, 0, 1]], "principal point cy=-300"),
    ([[500, 20, 319.5], [0, 500, 239.5], [0, 0, 1]], "skew"),
    ([[1000, 0, 639], [0, 1000, 479], [0, 0, 2]], "last row is [0.0, 0.0, 2.0]"),
    ([[500, 0, 0], [0, 500, 0], [319.5, 239.5, 1]], "last row"),  # transposed
])
def test_implausible_intrinsics_are_refused_naming_the_field(K, fragment):
    problems = CameraModel(K, [], 640, 480).problems()
    assert any(fragment in p for p in problems), problems


def test_plausible_cameras_pass_and_the_size_checks_wait_for_a_size():
    for fov in (2.0, 30.0, 90.0, 150.0):
        assert CameraModel.from_field_of_view(640, 480, fov).problems() == [], fov
    anamorphic = [[667.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]]
    assert CameraModel(anamorphic, [], 640, 480).problems() == []
    off_centre = [[500.0, 0, 600.0], [0, 500.0, 20.0], [0, 0, 1]]  # a crop of a larger sensor
    assert CameraModel(off_centre, [], 640, 480).problems() == []
    # Without an image size, the field of view and principal point are not known yet (the engine checks
    # again once the camera is fitted to the image).
    assert CameraModel([[1e9, 0, 5000], [0, 1e9, 239.5], [0, 0, 1]], [], 0, 0).problems() == []
    with pytest.raises(CameraModelError, match="field of view"):
        CameraModel([[1e9, 0, 5000], [0, 1e9, 239.5], [0, 0, 1]], [], 0, 0).fitted_to(640, 480).validated()


def test_good_intrinsics_pass():
    assert CameraModel(K, [0.1, -0.05, 0, 0, 0.01], 640, 480).problems() == []
    assert CameraModel(K, [], 640, 480, distortion_model="").problems() == []


def test_yaml_round_trip(tmp_path):
    cam = CameraModel(K, [0.1, -0.2, 0.001, 0.002, 0.03], 640, 480, "cam")
    path = tmp_path / "cam.yaml"
    path.write_text(yaml.safe_dump(cam.to_yaml_dict()))
    back = CameraModel.from_yaml(path)
    np.testing.assert_allclose(back.K, cam.K)
    np.testing.assert_allclose(back.D, cam.D)
    assert (back.width, back.height, back.distortion_model) == (640, 480, "plumb_bob")


@pytest.mark.parametrize("content, fragment", [
    ("not: [valid", "not valid YAML"),
    ("image_width: 640\n", "no 'camera_matrix'"),
    ("camera_matrix: {rows: 3, cols: 3, data: [1, 2]}\n", "expected 3x3"),
])
def test_bad_yaml_files_give_one_line_reasons(tmp_path, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(CameraModelError, match=fragment):
        CameraModel.from_yaml(path)
    with pytest.raises(CameraModelError, match="cannot read"):
        CameraModel.from_yaml(tmp_path / "missing.yaml")


def test_a_pure_resize_scales_k_and_anything_else_is_refused():
    cam = CameraModel(K, [], 640, 480)
    half = cam.fitted_to(320, 240)
    assert half.fx == pytest.approx(250) and half.cx == pytest.approx(159.5)
    # The principal point stays at the image centre in pixel-centre coordinates.
    assert half.cy == pytest.approx(119.5)
    with pytest.raises(CameraModelError, match="not a pure resize"):
        cam.fitted_to(640, 360)
    unknown = CameraModel(K, [], 0, 0)
    assert unknown.fitted_to(640, 480).width == 640


def test_ray_direction_goes_through_the_pixel():
    cam = CameraModel(K, [], 640, 480)
    np.testing.assert_allclose(cam.ray_direction(319.5, 239.5), [0, 0, 1], atol=1e-12)
    d = cam.ray_direction(819.5, 239.5)  # 500 px right = 45 degrees at f = 500
    assert np.degrees(np.arctan2(d[0], d[2])) == pytest.approx(45)
