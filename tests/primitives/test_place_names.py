"""Reading the table's named places from the words people use for them."""

from __future__ import annotations

import pytest

from capstan.primitives.geometry import POSITION_NAMES
from capstan.primitives.place_names import position_name


@pytest.mark.parametrize("name", POSITION_NAMES)
def test_every_exact_name_maps_to_itself(name):
    assert position_name(name) == name
    assert position_name(name.upper()) == name


@pytest.mark.parametrize(
    ("words", "name"),
    [
        ("upper-left", "top left corner"),
        ("the lower right", "bottom right corner"),
        ("back left corner", "top left corner"),
        ("front right corner", "bottom right corner"),
        ("the corner opposite the robot on the left", "top left corner"),
        ("right-hand corner on the robot's side", "bottom right corner"),
        ("the left corner farthest from the robot", "top left corner"),
        ("near right corner", "bottom right corner"),
        ("the left edge", "left side"),
        ("right border of the table", "right side"),
        ("the back edge", "top side"),
        ("the edge near the robot", "bottom side"),
        ("the far end of the table", "top side"),
        ("top of the table", "top side"),
        ("on the left-hand side", "left side"),
        ("the far right corner, away from the robot", "top right corner"),
        ("the corner on the robot's side, left", "bottom left corner"),
        ("the middle of the top side", "top side"),
        ("center", "middle"),
        ("the centre of the table", "middle"),
        ("left", "left side"),
        ("top", "top side"),
        # 'far' only intensifies a place already named left or right
        ("the far left", "left side"),
        ("far right edge", "right side"),
    ],
)
def test_everyday_words_name_the_place_a_person_means(words, name):
    assert position_name(words) == name


@pytest.mark.parametrize(
    "words",
    [
        "",
        "corner",  # which one?
        "the left corner",  # top or bottom?
        "side",
        "top bottom corner",
        "left right side",
        "the top left side",
        "left of the red block",  # about an object, not the table
        "next to the bowl",
        "10 cm left of the middle",  # a distance: not one of the nine
        "somewhere nice",
        # a place beside, near or between places, or 'right' meaning 'just'
        "left of the middle",
        "near the middle",
        "closest to the centre",
        "right in the middle",
        "right next to the robot",
        "between the middle and the right edge",
        "away from the left edge",
        "the corner opposite the top left corner",
        "not far from the robot",
        "on top",
        "top of the stack",
        # words the reader does not know, such as a declared object's name
        "the top tray",
        "in front of the mug",
    ],
)
def test_words_that_name_no_single_place_give_none(words):
    assert position_name(words) is None
