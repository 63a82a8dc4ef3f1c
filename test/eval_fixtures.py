"""Fixtures shared by the evaluation tests (imported by the modules that use them)."""

import pytest

from headpose_ros.evaluation.runner import make_engines
from headpose_ros.evaluation.synth import source_faces


@pytest.fixture(scope="module")
def face(photo):
    """The astronaut's face fitted in 3D and textured (evaluation.synth), for rendering at known poses."""
    (_, textured), = source_faces(photo, names=("astronaut",), log=lambda line: None)
    return textured


@pytest.fixture(scope="module")
def engines(prepared_assets):
    """Still-image engines of the landmark and network backends."""
    return make_engines(["landmarks", "hopenet"])
