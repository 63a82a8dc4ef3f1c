"""core.detection: BlazeFace on real photos, its settings, weighted NMS and box overlap."""

import dataclasses

import numpy as np
import pytest

from headpose_ros.core.config import DetectionConfig
from headpose_ros.core.detection import apply_affine, box_iou, invert_affine, weighted_nms
from headpose_ros.pipeline import face_stages

from support import astronaut_frame


@pytest.fixture(scope="module")
def detector(prepared_assets):
    return face_stages()[0]


def with_settings(detector, **values):
    detector.apply(dataclasses.replace(DetectionConfig(), **values))
    return detector


def test_one_face_in_the_astronaut_frame_with_its_eyes_level(detector, photo):
    detector.apply(DetectionConfig())
    faces = detector.detect(astronaut_frame(photo))
    assert len(faces) == 1 and faces.scores[0] > 0.8
    x0, y0, x1, y1 = faces.boxes[0]
    assert 200 < (x0 + x1) / 2 < 440 and 100 < (y0 + y1) / 2 < 380  # near the frame's centre
    right_eye, left_eye = faces.keypoints[0, 0], faces.keypoints[0, 1]
    assert left_eye[0] > right_eye[0] and abs(left_eye[1] - right_eye[1]) < 0.1 * (x1 - x0)
    assert faces.boxes.dtype == np.float32 and faces.keypoints.shape == (1, 6, 2)


def test_six_faces_in_the_group_photo_best_first(detector, photo):
    detector.apply(DetectionConfig())
    faces = detector.detect(photo("t1"))
    assert len(faces) == 6
    assert np.all(np.diff(faces.scores) <= 0)
    assert np.all(box_iou(faces.boxes, faces.boxes)[~np.eye(6, dtype=bool)] < 0.1)  # six different faces


def test_no_face_in_a_plain_image(detector):
    detector.apply(DetectionConfig())
    faces = detector.detect(np.full((480, 640, 3), 90, np.uint8))
    assert len(faces) == 0 and faces.keypoints.shape == (0, 6, 2)


def test_settings_apply_from_the_next_image(detector, photo):
    group = photo("t1")
    assert len(with_settings(detector, max_faces=2).detect(group)) == 2
    assert len(with_settings(detector, score_threshold=0.999).detect(group)) == 0
    boxes = with_settings(detector).detect(group).boxes
    limit = float(np.median(np.min(boxes[:, 2:] - boxes[:, :2], axis=1)))
    kept = with_settings(detector, min_face_size_px=limit).detect(group)
    assert 0 < len(kept) < 6 and np.all(np.min(kept.boxes[:, 2:] - kept.boxes[:, :2], axis=1) >= limit)
    # min_face_size_px is in full-resolution pixels: on an image shrunk 2x the same faces pass.
    half = group[::2, ::2]
    assert len(with_settings(detector, min_face_size_px=limit).detect(half, full_scale=2.0)) == len(kept)
    detector.apply(DetectionConfig())


def test_weighted_nms_blends_a_cluster_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    points = np.zeros((3, 1, 2), np.float32)
    points[1] = 10.0
    kept_boxes, kept_scores, kept_points = weighted_nms(boxes, scores, points, iou_threshold=0.3)
    assert kept_scores.tolist() == pytest.approx([0.9, 0.8])
    np.testing.assert_allclose(kept_boxes[0], (0.9 * boxes[0] + 0.6 * boxes[1]) / 1.5, rtol=1e-6)
    np.testing.assert_allclose(kept_points[0, 0], [4.0, 4.0], rtol=1e-6)  # 10 * 0.6 / 1.5
    np.testing.assert_allclose(kept_boxes[1], boxes[2])


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [3, 3, 3, 3]], float)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_affine_inverse_round_trips():
    A = np.array([[0.5, 0.1, 3.0], [-0.2, 0.7, -4.0]])
    pts = np.random.default_rng(0).uniform(-100, 100, (10, 2))
    np.testing.assert_allclose(apply_affine(invert_affine(A), apply_affine(A, pts)), pts, atol=1e-9)


def test_candidates_come_after_the_faces_and_leave_them_as_they_were(detector, photo):
    from headpose_ros.evaluation.synth import background, faceless_patches

    group = photo("t1")
    with_settings(detector, candidate_threshold=0.05)
    plain = detector.detect(group)
    both = detector.detect(group, candidates=True)
    n = len(plain)
    np.testing.assert_array_equal(both.boxes[:n], plain.boxes)  # the faces above score_threshold, untouched
    assert np.all(both.scores[n:] < 0.5) and np.all(both.scores[n:] >= 0.05)
    clutter = background(np.random.default_rng(11), 640, 480, faceless_patches(photo))
    assert len(detector.detect(clutter, candidates=True)) > len(detector.detect(clutter))
    # At or above score_threshold there are no candidates.
    with_settings(detector, candidate_threshold=0.5)
    assert len(detector.detect(clutter, candidates=True)) == len(detector.detect(clutter))
    with_settings(detector)


def test_box_containment_sees_a_small_box_inside_a_large_one():
    from headpose_ros.core.detection import box_containment

    big = np.array([[0.0, 0.0, 60.0, 60.0]])
    inside = np.array([[10.0, 10.0, 40.0, 40.0]])
    beside = np.array([[60.0, 0.0, 90.0, 30.0]])
    assert box_iou(big, inside)[0, 0] == pytest.approx(0.25)  # IoU alone calls them two faces
    assert box_containment(big, inside)[0, 0] == pytest.approx(1.0) == box_containment(inside, big)[0, 0]
    assert box_containment(big, beside)[0, 0] == 0.0
