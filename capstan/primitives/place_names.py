"""Reading a place on the table from the words people use for it.

The nine named positions ('top left corner', ..., 'right side', 'middle') are what the API lists, but
people (and models writing for them) name the same places from where the robot stands: the far left
corner, the right edge, the centre, the corner nearest the robot. `position_name` maps such words to
one of the nine, and gives None for anything it cannot read unambiguously (a place relative to an
object or at a distance, a corner with only one direction), so a caller can say which names exist
instead of guessing.

The robot stands at the bottom (small y): near, front and the robot's side are the bottom; far,
back and away from the robot are the top (docs/CONTRACTS.md "Coordinates").
"""

from __future__ import annotations

import re

from capstan.primitives.geometry import COLORS

_TOP = {"top", "upper", "back", "rear", "north"}
_BOTTOM = {"bottom", "lower", "front", "south"}
_FAR = {"far", "farther", "further", "farthest", "furthest", "away", "opposite"}  # from the robot: the top
_NEAR = {"near", "nearer", "nearest", "close", "closer", "closest"}  # to the robot: the bottom
_LEFT = {"left", "west"}
_RIGHT = {"right", "east"}
_CORNER = {"corner"}
_SIDE = {"side", "edge", "border", "end"}
_MIDDLE = {"middle", "centre", "center", "central"}
# words that make a description about something other than the table's own places
_OBJECT_WORDS = {"block", "blocks", "bowl", "bowls", "object", "objects", "cube", "cubes", *COLORS}


def position_name(text: str) -> str | None:
    """The named position `text` means ('top left corner', ..., 'middle'), or None when it does not
    name one of them unambiguously. Exact names map to themselves."""
    # "the robot's side" is the robot's end of the table, not one of its sides
    words = re.findall(r"[a-z]+", re.sub(r"robot(?:'s)? side", "robot", text.lower()).replace("'s", ""))
    if not words or _OBJECT_WORDS & set(words) or re.search(r"\d", text):  # '5 cm left of ...'
        return None
    vertical = _direction(words, _TOP, _BOTTOM)
    horizontal = _direction(words, _LEFT, _RIGHT)
    if vertical == "" or horizontal == "":  # both ways at once: 'top bottom corner'
        return None
    far_near = _direction(words, _FAR, _NEAR)
    if far_near is None and "robot" in words:  # 'the robot's side', 'the corner by the robot'
        far_near = "bottom"
    corner, side = bool(_CORNER & set(words)), bool(_SIDE & set(words))
    middle = bool(_MIDDLE & set(words))
    # 'far'/'near' say how far from the robot, but only intensify a place already named left or
    # right ('the far right edge', 'the far left')
    if vertical is None and far_near and ("robot" in words or corner or not horizontal):
        vertical = far_near
    if corner and side:
        return None
    if corner:
        return f"{vertical} {horizontal} corner" if vertical and horizontal else None
    if vertical and horizontal:
        return None if side or middle else f"{vertical} {horizontal} corner"
    if vertical or horizontal:
        return f"{vertical or horizontal} side"
    return "middle" if middle and not side else None


def _direction(words: list[str], first: set[str], second: set[str]) -> str | None:
    """`first`'s canonical word (top/left), `second`'s (bottom/right), None for neither, '' for both."""
    a, b = bool(first & set(words)), bool(second & set(words))
    if a and b:
        return ""
    if first is _FAR:
        return "top" if a else "bottom" if b else None
    if a:
        return "top" if first is _TOP else "left"
    if b:
        return "bottom" if second is _BOTTOM else "right"
    return None
