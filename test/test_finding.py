"""Where the faces are (core.finding): followed from their landmarks, searched for by the detector when due.

Real models on real photos; what is checked is what each frame searched
(FrameResult.searched) and which faces it found, never how long it took.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from headpose_ros.core.config import EngineConfig, still_image_config, with_values
from headpose_ros.core.finding import region_around, tile_boxes
from headpose_ros.pipeline import create_engine

from support import astronaut_frame

RATE = 15.0


def video_engine(**values):
    return create_engine(with_values(EngineConfig(), {"tracking.id_style": "sequential", **values}))


def play(engine, frames, camera, t0=0.0):
    engine.reset()
    return [engine.process(f, camera, t0 + k / RATE) for k, f in enumerate(frames)]


def small_face_frame(photo, head_px=82, at=(450, 80)) -> np.ndarray:
    """The astronaut's head shrunk (area filter) to head_px square, on a dark 640x480 frame: a face of
    about 25 px, too small for the whole-image detector."""
    head = cv2.resize(photo("astronaut")[0:300, 100:400], (head_px, head_px), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 40, np.uint8)
    x, y = at
    frame[y:y + head_px, x:x + head_px] = head
    return frame


def two_faces(photo, hide_right=False) -> np.ndarray:
    """Two astronauts side by side in 640x480; the right one covered by a grey board when hide_right."""
    head = cv2.resize(photo("astronaut")[0:300, 100:400], (200, 200), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 40, np.uint8)
    frame[140:340, 60:260] = head
    frame[140:340, 380:580] = head
    if hide_right:
        frame[120:360, 360:600] = 128
    return frame


def test_tiles_cover_the_image_with_overlap():
    boxes = tile_boxes(640, 480, 2)
    assert len(boxes) == 4
    covered = np.zeros((480, 640), bool)
    for x0, y0, x1, y1 in boxes:
        covered[y0:y1, x0:x1] = True
        assert x1 - x0 > 320 and y1 - y0 > 240  # overlap: a face on a tile's edge is whole in the next
    assert covered.all()
    assert tile_boxes(640, 480, 1).tolist() == [[0, 0, 640, 480]]


def test_the_region_around_a_lost_face_is_clipped_to_the_image():
    assert region_around(np.array([100, 100, 140, 140]), 3.0, 640, 480).tolist() == [60, 60, 180, 180]
    x0, y0, x1, y1 = region_around(np.array([0, 0, 40, 40]), 3.0, 640, 480)
    assert (x0, y0) == (0, 0) and x1 <= 640 and y1 <= 480


def test_a_followed_face_needs_no_detector_and_keeps_its_id(photo, camera, prepared_assets):
    engine = video_engine()
    frames = [astronaut_frame(photo, shift=(3 * k, -2 * k), angle_deg=k) for k in range(9)]
    results = play(engine, frames, camera)
    assert results[0].searched == "image"  # nothing followed: the whole image (it found her: no tiles)
    assert all(r.searched == "" for r in results[1:]), [r.searched for r in results]
    ids = {h.track_id for r in results for h in r.heads}
    assert ids == {"0001"} and len(results[-1].heads) == 1


def test_the_search_schedule_while_fewer_than_max_faces_are_followed(photo, camera, prepared_assets):
    engine = video_engine(**{"detection.search_period": 10, "detection.tile_period": 4})
    frame = astronaut_frame(photo)
    searched = [r.searched for r in play(engine, [frame] * 26, camera)]
    whole = [k for k, s in enumerate(searched) if "image" in s]
    assert whole == [0, 10, 20], searched
    tiles = [(k, int(s.split("tile ")[1])) for k, s in enumerate(searched) if "tile" in s]
    assert not any("image" in searched[k] for k, _ in tiles)  # one search a frame
    assert [t for _, t in tiles] == [k % 4 for k in range(len(tiles))] and len(tiles) >= 5, searched
    assert all(b - a >= 4 for (a, _), (b, _) in zip(tiles, tiles[1:]))


def test_no_search_while_max_faces_are_followed(photo, camera, prepared_assets):
    engine = video_engine(**{"detection.max_faces": 1, "detection.search_period": 3, "detection.tile_period": 2})
    results = play(engine, [astronaut_frame(photo)] * 12, camera)
    assert [r.searched for r in results[1:]] == [""] * 11
    assert all(len(r.heads) == 1 for r in results[2:])


def test_a_lost_face_is_searched_for_where_it_was_and_comes_back_with_its_id(photo, camera, prepared_assets):
    engine = video_engine()
    shown, hidden = two_faces(photo), two_faces(photo, hide_right=True)
    results = play(engine, [shown] * 4 + [hidden] * 3 + [shown] * 4, camera)
    before = {h.track_id: h.box for h in results[3].heads}
    assert len(before) == 2
    assert "image" in results[4].searched and "lost face" in results[4].searched  # lost now: everywhere
    assert "lost face" in results[5].searched and "lost face" in results[6].searched
    assert len(results[5].heads) == 1
    back = results[7]  # the first frame it is visible again
    assert {h.track_id for h in back.heads} == set(before), (back.heads, back.searched)
    right = max(before, key=lambda i: before[i][0])
    box = next(h.box for h in back.heads if h.track_id == right)
    assert np.abs(box - before[right]).max() < 20


def test_a_small_face_is_found_in_a_tile_then_followed(photo, camera, prepared_assets):
    frame = small_face_frame(photo)
    engine = video_engine()
    assert len(engine.detector.detect(frame)) == 0  # the premise: too small for the whole image
    results = play(engine, [frame] * 5, camera)
    assert "tile" in results[0].searched and results[0].faces_detected == 1
    assert [r.searched for r in results[1:]] == [""] * 4
    head = results[-1].heads[0]
    assert 20 < head.box[2] - head.box[0] < 40
    still = create_engine(still_image_config())
    result = still.process(frame, camera, 0.0)
    assert result.searched == "image + tile 0 + tile 1 + tile 2 + tile 3" and len(result.heads) == 1


def test_still_images_search_everything_and_follow_nothing(photo, camera, prepared_assets):
    engine = create_engine(still_image_config())
    results = play(engine, [astronaut_frame(photo)] * 3, camera)
    assert all(r.searched == "image + tile 0 + tile 1 + tile 2 + tile 3" for r in results)
    assert all(len(r.heads) == 1 for r in results)


@pytest.mark.parametrize("backend", ["hopenet", "fusion"])
def test_network_backends_follow_faces_too(backend, photo, camera, prepared_assets):
    engine = video_engine(backend=backend)
    frames = [astronaut_frame(photo, shift=(2 * k, 0)) for k in range(8)]
    results = play(engine, frames, camera)
    assert all(r.searched == "" for r in results[1:])
    assert {h.track_id for r in results for h in r.heads} == {"0001"}
    assert all(h.method == backend for h in results[-1].heads)


@pytest.mark.parametrize("backend", ["hopenet", "fusion"])
def test_what_only_a_tile_found_must_pass_the_face_mesh(backend, photo, prepared_assets):
    # obama3: one face; at a tile's zoom the detector also takes his folded hand for one (score 0.58).
    # The network backends need no landmarks, so only the mesh's presence check keeps the hand out.
    from headpose_ros.evaluation.consistency import centred_camera

    image = photo("obama3")
    engine = create_engine(still_image_config({"backend": backend}))
    result = engine.process(image, centred_camera(image), 0.0)
    assert len(result.heads) == 1 and result.heads[0].box[2] - result.heads[0].box[0] > 250, result.heads
    tiles = engine.finder.zoom_detector
    hands = [tiles.detect(image[y0:y1, x0:x1]) for x0, y0, x1, y1 in tile_boxes(image.shape[1], image.shape[0], 2)]
    assert sum(len(h) for h in hands) >= 2  # the premise: a tile sees the face and something else


def test_a_profile_the_detector_scores_low_is_kept_when_the_face_mesh_sees_a_face(photo, prepared_assets):
    """Candidates: a face turned 75 deg (looking up) scores 0.49, below score_threshold; the mesh confirms it."""
    from headpose_ros.core.rotation import camera_from_yaw_pitch_roll_deg

    from support import render_camera, textured_astronaut

    camera = render_camera()
    image, _ = textured_astronaut(photo).render(camera_from_yaw_pitch_roll_deg(75, -20, 0), np.array([0, 0, 0.8]),
                                                camera)
    strict = create_engine(still_image_config({"backend": "hopenet", "detection.candidate_threshold": 0.5}))
    assert strict.process(image, camera, 0.0).heads == []  # the premise: below the threshold
    engine = create_engine(still_image_config({"backend": "hopenet"}))
    heads = engine.process(image, camera, 0.0).heads
    assert len(heads) == 1
    truth = camera_from_yaw_pitch_roll_deg(75, -20, 0)
    from headpose_ros.core.rotation import angle_between_deg
    assert angle_between_deg(heads[0].R, truth) < 20
    # Not in video: a profile the mesh cannot follow would come and go with the searches.
    assert video_engine(backend="hopenet").process(image, camera, 0.0).faces_detected == 0


@pytest.mark.parametrize("backend", ["landmarks", "hopenet", "fusion"])
def test_no_face_on_face_free_images_though_the_detector_offers_candidates(backend, photo, prepared_assets):
    from headpose_ros.evaluation.synth import background, faceless_patches
    from support import render_camera

    rng = np.random.default_rng(11)
    patches = faceless_patches(photo)
    images = [background(rng, 640, 480, patches) for _ in range(40)]
    engine = create_engine(still_image_config({"backend": backend}))
    offered = sum(len(engine.detector.detect(image, candidates=True)) for image in images)
    assert offered >= 10  # the premise: candidates (and a few faces above 0.5) on clutter and photo patches
    assert sum(len(engine.process(image, render_camera(), 0.0).heads) for image in images) == 0


def test_given_boxes_get_their_eye_line_from_the_face_mesh(photo, camera, prepared_assets):
    """A labelled box has no keypoints: the mesh crops the face upright, then from its own landmarks, and the
    eye keypoints come from those, so a tilted face's eye line is known (the network is given it levelled)."""
    from headpose_ros.core.landmarks import FaceRois

    engine = create_engine(still_image_config({"backend": "hopenet"}))
    tilts = []
    for angle in (0, 30):
        frame = astronaut_frame(photo, angle_deg=angle)
        box = engine.detector.detect(frame).boxes[:1]
        found = engine.finder.given(frame, box)
        np.testing.assert_array_equal(found.faces.boxes, box)  # the box stays the one given
        tilts.append(np.degrees(FaceRois.from_detections(found.faces, 1.0).angles[0]))
    assert tilts[1] - tilts[0] == pytest.approx(30, abs=4)  # the photo's own tilt aside
