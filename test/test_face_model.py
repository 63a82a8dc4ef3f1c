"""The metric face model: REP-155 frame, metric scale, symmetry."""

import numpy as np
import pytest

from headpose_ros.core import face_model as fm

FACE = fm.load_face_model()


def test_frame_origin_and_axes():
    p = FACE.points
    np.testing.assert_allclose(p[fm.SELLION], 0, atol=1e-9)
    assert p[fm.NOSE_TIP, 0] > 0.015  # the nose sticks out along +x
    assert p[fm.FOREHEAD, 2] > 0.03 and p[fm.CHIN, 2] < -0.09  # z up
    assert p[fm.LEFT_EYE_OUTER, 1] > 0.03 and p[fm.RIGHT_EYE_OUTER, 1] < -0.03  # y to the person's left


def test_metric_scale():
    right = FACE.points[list(fm.RIGHT_EYE_CONTOUR)].mean(0)
    left = FACE.points[FACE.mirror[list(fm.RIGHT_EYE_CONTOUR)]].mean(0)
    assert np.linalg.norm(left - right) == pytest.approx(0.063, abs=1e-4)
    # Anthropometric sanity: face breadth and sellion-to-chin height of adults.
    assert 0.12 < np.ptp(FACE.points[:, 1]) < 0.16
    assert 0.10 < -FACE.points[fm.CHIN, 2] < 0.14


def test_mirror_symmetry():
    m = FACE.mirror
    assert np.array_equal(m[m], np.arange(468))
    np.testing.assert_allclose(FACE.points[m] * [1, -1, 1], FACE.points, atol=2e-6)
    assert m[fm.RIGHT_EYE_OUTER] == fm.LEFT_EYE_OUTER and m[fm.NOSE_TIP] == fm.NOSE_TIP


def test_rigid_subset_excludes_mouth_and_eyelids():
    rigid = set(FACE.rigid_indices.tolist())
    assert 200 < len(rigid) < 320
    assert fm.MOUTH_LEFT not in rigid and fm.CHIN not in rigid and 159 not in rigid  # 159: upper eyelid
    assert {fm.SELLION, fm.NOSE_TIP, fm.RIGHT_EYE_OUTER, fm.LEFT_EYE_INNER} <= rigid


@pytest.mark.slow
def test_committed_model_is_reproducible(prepared_assets):
    """Re-deriving from the photos, the mesh model and the network gives the committed numbers."""
    from headpose_ros.tools import derive_face_model as derive

    points, mirror = derive.derive(derive.collect_meshes())
    rigid = fm.rigid_mask(points, mirror)
    pitch, spread = derive.frontal_pitch_deg(points, rigid, derive.collect_frontal_views())
    assert np.array_equal(mirror, FACE.mirror) and np.array_equal(rigid, FACE.rigid)
    assert -6 < pitch < 0 and spread < 6  # the oval's normal is a few degrees off the 300W-LP frontal
    assert np.abs(derive.turned_about_y(points, pitch) / 1000 - FACE.points).max() < 0.5e-3  # half a millimetre


def test_frontal_turn_is_recovered_from_views_of_known_turn():
    """frontal_pitch_deg finds the turn between the model's axes and the views' frontal, by mirror symmetry."""
    from headpose_ros.tools import derive_face_model as derive
    from transforms3d import euler

    from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg

    points_mm = FACE.points * 1000
    views = []
    for yaw in (-20, 0, 20):
        R_model = camera_from_yaw_pitch_roll_deg(yaw, 10, 0)
        # What a network with a frontal 4 deg below the model's would read: the model turned by -4 in pitch.
        R_net = R_model @ euler.euler2mat(0.0, np.radians(-4.0), 0.0, "rzyx")  # about the face's own y
        mesh = 3.0 * points_mm @ R_model.T + [320, 240, 0]
        views.append((mesh, R_net))
    pitch, spread = derive.frontal_pitch_deg(points_mm, FACE.rigid, views)
    assert pitch == pytest.approx(-4.0, abs=1e-6) and spread < 1e-6
    turned = derive.turned_about_y(points_mm, pitch)
    # In the turned axes the same views read as the network does.
    assert derive.frontal_pitch_deg(turned, FACE.rigid, views)[0] == pytest.approx(0.0, abs=1e-6)
