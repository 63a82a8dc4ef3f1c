"""Who looks at what: attention targets from head poses, with hysteresis, dwell time and events.

Geometry, all in the camera optical frame (metres): a face's gaze ray starts
at its sellion t and points along its face frame's x axis, R[:, 0] (head pose
only; an eye-gaze estimate would replace the direction). For each candidate
target point p, the angle between the ray and p - t, and the distance |p - t|.

A target is *in view* of a face when that angle is within the target's cone
half-angle and the distance within `max_distance_m`. Its score, in [0, 1]:

    score = angular * proximity
    angular   = (1 + cos(pi * angle / (2 * cone))) / 2  for angle < 2 * cone, else 0
                (1 dead ahead, 0.5 at the cone's edge, 0 at twice the cone)
    proximity = 1 up to max_distance_m / 2, then falling linearly to 0 at max_distance_m

Selection per face, with hysteresis (AttentionTracker): the best-scoring
target in view becomes the attended one only after it has been the best for
`min_dwell_s`; the attended target is kept while its angle stays within
`exit_cone_factor` times its cone, and dropped after it has been outside for
`release_s`. So a one-frame blip neither takes nor loses attention. `dwell_s`
is how long the current target has been attended without a break. Every
change of a face's attended target (to another, to none, or from none) is an
event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .config import GAZE_AXES, ROBOT, AttentionConfig

FACE_TARGET_PREFIX = "face_"


@dataclass(frozen=True)
class TargetPoint:
    """A candidate target this frame: where it is in the camera optical frame (metres).

    name: e.g. "robot", "table", "face_0002". frame: the TF frame it was given in.
    cone_half_angle_deg: its own cone, or None for the default.
    """

    name: str
    frame: str
    position: np.ndarray
    cone_half_angle_deg: float | None = None


@dataclass
class Candidate:
    """One target as one face sees it: angle (degrees) between the gaze ray and the target, distance (m),
    score, its cone half-angle (degrees), whether it is in view (inside its cone and range), and where it is."""

    name: str
    frame: str
    angle_deg: float
    distance_m: float
    score: float
    cone_deg: float
    in_view: bool
    position: np.ndarray  # (3,) metres, camera optical frame


@dataclass
class FaceAttention:
    """One face's attention this frame.

    target: the attended target's name, "" when none. angle_deg, distance_m,
    score: of that target (NaN, NaN, 0 when none). dwell_s: how long it has
    been attended. candidates: every target, best score first.
    """

    face_id: str
    target: str
    target_frame: str
    angle_deg: float
    distance_m: float
    score: float
    dwell_s: float
    looking_at_robot: bool
    mutual_gaze: bool
    candidates: list[Candidate]

    @property
    def attended(self) -> Candidate | None:
        """The candidate being attended, or None."""
        return next((c for c in self.candidates if c.name == self.target), None) if self.target else None


@dataclass
class AttentionEvent:
    """A face's attended target changed at `stamp` (s); previous_dwell_s: how long the previous one lasted."""

    face_id: str
    previous: str
    current: str
    stamp: float
    previous_dwell_s: float


def gaze_geometry(R: np.ndarray, t: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angles (k,) degrees between the gaze ray of a face (R (3, 3), t (3,) m) and points (k, 3) m; their distances (k,)."""
    d = np.asarray(points, dtype=np.float64).reshape(-1, 3) - np.asarray(t, dtype=np.float64)
    distance = np.linalg.norm(d, axis=1)
    cos = (d @ np.asarray(R, dtype=np.float64)[:, 0]) / np.maximum(distance, 1e-9)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), distance


def attention_score(angle_deg: np.ndarray, distance_m: np.ndarray, cone_deg: np.ndarray, max_distance_m: float) -> np.ndarray:
    """Cone-based score in [0, 1] (module docstring); arrays broadcast."""
    ratio = np.asarray(angle_deg) / (2.0 * np.asarray(cone_deg))
    angular = np.where(ratio < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.minimum(ratio, 1.0))), 0.0)
    half = 0.5 * max_distance_m
    proximity = np.clip((max_distance_m - np.asarray(distance_m)) / half, 0.0, 1.0)
    return angular * proximity


@dataclass
class _FaceState:
    current: str = ""
    since: float = 0.0  # when the current target was taken
    outside_since: float | None = None  # when the current target last left the widened cone
    pending: str = ""
    pending_since: float = 0.0


@dataclass
class RobotGaze:
    """Where the robot looks, for mutual gaze: origin (3,) m and unit direction (3,), camera optical frame."""

    origin: np.ndarray
    direction: np.ndarray


@dataclass
class AttentionScene:
    """Everything a face may attend, placed in the camera optical frame of this image.

    targets: the robot and the configured targets (other faces are added by the tracker).
    robot_gaze: where the robot looks (for mutual gaze), or None.
    problems: targets that could not be placed this frame, one message each.
    """

    targets: list[TargetPoint] = field(default_factory=list)
    robot_gaze: RobotGaze | None = None
    problems: list[str] = field(default_factory=list)


def place_scene(config: AttentionConfig, camera_frame: str,
                lookup: Callable[[str], tuple[np.ndarray, np.ndarray]] | None = None) -> AttentionScene:
    """The robot, the configured targets and the robot's gaze, placed in the camera optical frame.

    camera_frame: the image's frame; targets in it (or in "") need no transform.
    lookup(frame) -> (R (3, 3), t (3,) m): `frame` in the camera frame (TF, in
        the node); it may raise, and the target is then left out with a
        message in `problems`. None: only the camera's own frame can be placed
        (the CLI, tests).
    """
    scene = AttentionScene()

    def transform(frame: str) -> tuple[np.ndarray, np.ndarray]:
        if frame in ("", camera_frame):
            return np.eye(3), np.zeros(3)
        if lookup is None:
            raise LookupError("frames other than the camera's need TF")
        return lookup(frame)

    for spec in (config.robot, *config.targets):
        try:
            R, t = transform(spec.frame)
        except Exception as exc:  # tf2's LookupException, ExtrapolationException, ...
            scene.problems.append(f"target '{spec.name}': no transform {camera_frame} <- {spec.frame} "
                                  f"({type(exc).__name__}: {exc})")
            continue
        scene.targets.append(TargetPoint(spec.name, spec.frame or camera_frame,
                                         R @ np.asarray(spec.offset, float) + t, spec.cone_half_angle_deg or None))
    if config.mutual_gaze:
        try:
            R, t = transform(config.robot_gaze_frame)
            scene.robot_gaze = RobotGaze(t, R[:, GAZE_AXES.index(config.robot_gaze_axis)])
        except Exception as exc:
            scene.problems.append(f"robot gaze: no transform {camera_frame} <- {config.robot_gaze_frame} "
                                  f"({type(exc).__name__}: {exc})")
    return scene


class AttentionTracker:
    """Per-face attention over time (module docstring). Call update() once per frame, in stamp order."""

    def __init__(self, settings: AttentionConfig = AttentionConfig()):
        self.settings = settings
        self._faces: dict[str, _FaceState] = {}

    def apply(self, settings: AttentionConfig) -> None:
        """Use these settings from the next update on."""
        self.settings = settings

    def reset(self) -> None:
        self._faces.clear()

    def forget(self, face_ids) -> None:
        """Drop ended tracks; no events (the track's end is its own news)."""
        for face_id in face_ids:
            self._faces.pop(face_id, None)

    def candidates(self, face_id: str, R: np.ndarray, t: np.ndarray, targets: list[TargetPoint],
                   faces: dict[str, np.ndarray]) -> list[Candidate]:
        """Every target (and every other face, if enabled) as this face sees it, best score first."""
        s = self.settings
        points = [(p.name, p.frame, p.position, p.cone_half_angle_deg or s.cone_half_angle_deg) for p in targets]
        if s.faces_as_targets:
            points += [(f"{FACE_TARGET_PREFIX}{other}", f"{FACE_TARGET_PREFIX}{other}", position, s.cone_half_angle_deg)
                       for other, position in faces.items() if other != face_id]
        if not points:
            return []
        angle, distance = gaze_geometry(R, t, np.array([p[2] for p in points]))
        cones = np.array([p[3] for p in points])
        score = attention_score(angle, distance, cones, s.max_distance_m)
        in_view = (angle <= cones) & (distance <= s.max_distance_m)
        out = [Candidate(p[0], p[1], float(a), float(d), float(sc), float(p[3]), bool(v), np.asarray(p[2], float))
               for p, a, d, sc, v in zip(points, angle, distance, score, in_view)]
        return sorted(out, key=lambda c: -c.score)

    def update(self, heads, targets: list[TargetPoint], stamp: float,
               robot_gaze: RobotGaze | None = None) -> tuple[list[FaceAttention], list[AttentionEvent]]:
        """Attention of every head (core.types.HeadPose: track_id, R, t) this frame, and the changes."""
        s = self.settings
        faces = {h.track_id: np.asarray(h.t, dtype=np.float64) for h in heads}
        out, events = [], []
        for head in heads:
            state = self._faces.setdefault(head.track_id, _FaceState())
            cands = self.candidates(head.track_id, head.R, head.t, targets, faces)
            best = next((c for c in cands if c.in_view), None)
            previous, previous_since = state.current, state.since
            self._select(state, cands, best, stamp)
            if state.current != previous:
                events.append(AttentionEvent(head.track_id, previous, state.current, stamp,
                                             stamp - previous_since if previous else 0.0))
            chosen = next((c for c in cands if c.name == state.current), None) if state.current else None
            looking_at_robot = state.current == ROBOT
            out.append(FaceAttention(
                head.track_id, state.current, chosen.frame if chosen else "",
                chosen.angle_deg if chosen else math.nan, chosen.distance_m if chosen else math.nan,
                chosen.score if chosen else 0.0, stamp - state.since if state.current else 0.0,
                looking_at_robot, looking_at_robot and _robot_sees(robot_gaze, head.t, s), cands))
        return out, events

    def _select(self, state: _FaceState, cands: list[Candidate], best: Candidate | None, stamp: float) -> None:
        """Hysteresis: keep, switch (after min_dwell_s) or release (after release_s) the attended target."""
        s = self.settings
        current = next((c for c in cands if c.name == state.current), None) if state.current else None
        keep = (current is not None and current.angle_deg <= current.cone_deg * s.exit_cone_factor
                and current.distance_m <= s.max_distance_m)
        if keep:
            state.outside_since = None
        elif state.current and state.outside_since is None:
            state.outside_since = stamp
        # A new best must stay the best for min_dwell_s before it is taken.
        if best is not None and best.name != state.current:
            if state.pending != best.name:
                state.pending, state.pending_since = best.name, stamp
            if stamp - state.pending_since >= s.min_dwell_s:
                self._take(state, best, stamp)
                return
        else:
            state.pending = ""
        # The attended target is released once it has been out of its widened cone for
        # release_s, or at once when it is gone (a face that left the picture).
        if state.current and not keep and (current is None or stamp - state.outside_since >= s.release_s):
            state.current, state.outside_since, state.since = "", None, stamp

    @staticmethod
    def _take(state: _FaceState, best: Candidate, stamp: float) -> None:
        state.current, state.since = best.name, stamp
        state.pending, state.outside_since = "", None


def _robot_sees(gaze: RobotGaze | None, sellion: np.ndarray, s: AttentionConfig) -> bool:
    """True when the person's sellion lies within the cone of the robot's own gaze."""
    if gaze is None:
        return False
    d = np.asarray(sellion, dtype=np.float64) - gaze.origin
    distance = float(np.linalg.norm(d))
    if distance < 1e-9 or distance > s.max_distance_m:
        return False
    angle = math.degrees(math.acos(float(np.clip(d @ gaze.direction / distance, -1.0, 1.0))))
    return angle <= s.cone_half_angle_deg
