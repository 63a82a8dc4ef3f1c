"""core.landmarks: the face mesh on eye-levelled crops of real faces, back in image pixels."""

import numpy as np
import pytest

from headpose_ros.core import face_model as fm
from headpose_ros.core.landmarks import FaceRois, box_from_landmarks, crop_affines, keypoints_from_landmarks
from headpose_ros.core.types import FaceDetections
from headpose_ros.pipeline import face_stages

from support import astronaut_frame


@pytest.fixture(scope="module")
def stages(prepared_assets):
    return face_stages()


def test_landmarks_lie_on_the_face_in_image_pixels(stages, photo):
    detector, mesh = stages
    frame = astronaut_frame(photo)
    faces = detector.detect(frame)
    out = mesh.estimate(frame, faces)
    assert out.points.shape == (1, 468, 3) and out.presence[0] > 0.9
    x0, y0, x1, y1 = faces.boxes[0]
    pts = out.points[0]
    inside = (pts[:, 0] > x0 - 0.3 * (x1 - x0)) & (pts[:, 0] < x1 + 0.3 * (x1 - x0))
    assert inside.mean() > 0.95
    # The person's left eye is on the image's right for a face looking at the camera; the nose tip nearest.
    assert pts[fm.LEFT_EYE_OUTER, 0] > pts[fm.RIGHT_EYE_OUTER, 0]
    assert pts[fm.NOSE_TIP, 2] < np.median(pts[:, 2])


def test_a_rolled_face_gets_a_rolled_crop_and_the_same_shape(stages, photo):
    detector, mesh = stages
    upright = astronaut_frame(photo)
    rolled = astronaut_frame(photo, angle_deg=30)
    angle0 = FaceRois.from_detections(detector.detect(upright), 1.5).angles
    angle1 = FaceRois.from_detections(detector.detect(rolled), 1.5).angles
    assert np.degrees(angle1[0] - angle0[0]) == pytest.approx(30, abs=6)  # counter-clockwise on screen
    a = mesh.estimate(upright, detector.detect(upright)).points[0, :, :2]
    b = mesh.estimate(rolled, detector.detect(rolled)).points[0, :, :2]
    eye_line = lambda p: np.degrees(np.arctan2(-(p[fm.LEFT_EYE_OUTER, 1] - p[fm.RIGHT_EYE_OUTER, 1]),  # noqa: E731
                                               p[fm.LEFT_EYE_OUTER, 0] - p[fm.RIGHT_EYE_OUTER, 0]))
    assert eye_line(b) - eye_line(a) == pytest.approx(30, abs=4)


def test_no_face_in_the_crop_means_low_presence(stages):
    _, mesh = stages
    noise = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    fake = FaceDetections(np.array([[200, 150, 320, 270]], np.float32), np.array([0.9], np.float32),
                          np.array([[[230, 190], [290, 190], [260, 220], [260, 245], [205, 200], [315, 200]]],
                                   np.float32))
    assert mesh.estimate(noise, fake).presence[0] < 0.5


def test_six_faces_in_one_batch_equal_six_single_runs(stages, photo):
    detector, mesh = stages
    group = photo("t1")
    faces = detector.detect(group)
    together = mesh.estimate(group, faces).points
    alone = np.concatenate([mesh.estimate(group, faces.take(slice(i, i + 1))).points for i in range(len(faces))])
    assert mesh.runtime.accepts_batch(mesh.model.input.name)
    np.testing.assert_allclose(together, alone, atol=0.05)  # pixels


def test_crop_affine_maps_the_roi_centre_to_the_crop_centre_and_levels_the_eyes():
    centres = np.array([[100.0, 50.0]])
    A = crop_affines(centres, np.array([40.0]), np.array([np.radians(30)]), 192)[0]
    np.testing.assert_allclose(A[:, :2] @ centres[0] + A[:, 2], [95.5, 95.5])
    # A point up and to the right of the centre along a 30-degree eye line lands level with it in the crop.
    p = centres[0] + 10 * np.array([np.cos(np.radians(30)), -np.sin(np.radians(30))])
    q = A[:, :2] @ p + A[:, 2]
    assert q[1] == pytest.approx(95.5) and q[0] > 95.5


@pytest.mark.parametrize("angle", [0, 25])
def test_a_face_followed_from_its_landmarks_gets_the_detectors_box_and_crop(stages, photo, angle):
    """What the video tracker relies on: landmarks give back the box and the crop the detector would."""
    detector, mesh = stages
    for name in ("astronaut", "obama", "t1"):
        image = astronaut_frame(photo, angle_deg=angle) if name == "astronaut" else photo(name)
        faces = detector.detect(image)
        points = mesh.estimate(image, faces).points
        boxes = box_from_landmarks(points)
        from headpose_ros.core.detection import box_iou

        assert np.all(np.diag(box_iou(boxes, faces.boxes)) > 0.75), name
        follow = FaceRois.from_landmarks(points, mesh.model.roi_scale)
        detected = FaceRois.from_detections(faces, mesh.model.roi_scale)
        # The mesh finds a turned, tilted face's eye line better than the detector's six keypoints (its far-eye
        # keypoint lands on the cheek: 12.6 deg less roll on the group photo's fifth face); the crops agree within that.
        np.testing.assert_allclose(follow.angles, detected.angles, atol=np.radians(15))
        assert np.all(np.abs(follow.sides / detected.sides - 1) < 0.25), name
        # Following the crop finds the same landmarks again (to a pixel or two on a still image).
        again = mesh.estimate_rois(image, follow)
        assert np.all(again.presence > 0.9)
        assert np.median(np.abs(again.points[:, :, :2] - points[:, :, :2])) < 2.0
        # The eyes: where the detector puts them, give or take its own error (the far eye of a turned face).
        keypoints = keypoints_from_landmarks(points)
        error = np.linalg.norm(keypoints[:, :2] - faces.keypoints[:, :2], axis=2) / (faces.boxes[:, 2:3] - faces.boxes[:, 0:1])
        assert np.median(error) < 0.05 and error.max() < 0.2, (name, error)
