"""Reading a place on the table from the words people use for it.

The nine named positions ('top left corner', ..., 'right side', 'middle') are what the API lists, but
people (and models writing for them) name the same places from where the robot stands: the far left
corner, the right edge, the centre, the corner nearest the robot. `position_name` maps such words to
one of the nine. It reads only words it knows: anything else ('next to', 'between', 'just', 'not',
an object, a distance) and any relation ('left of the middle', 'near the middle') gives None, so a
caller says which names exist instead of moving a block somewhere nobody meant.

The robot stands at the bottom (small y): near, front and the robot's side are the bottom; far,
back and away from the robot are the top (docs/CONTRACTS.md "Coordinates").
"""

from __future__ import annotations

import re

_TOP = {"top", "upper", "back", "rear", "north"}
_BOTTOM = {"bottom", "lower", "front", "south"}
_FAR = {"far", "farther", "further", "farthest", "furthest"}  # from the robot: the top
_NEAR = {"near", "nearer", "nearest", "closest"}  # to the robot: the bottom
_LEFT = {"left", "west"}
_RIGHT = {"right", "east"}
_CORNER = {"corner"}
_SIDE = {"side", "edge", "border", "end"}
_MIDDLE = {"middle", "centre", "center", "central"}
_PLACE = _CORNER | _SIDE | _MIDDLE
_FILLER = {"the", "hand", "on", "at", "of"}  # 'on the left-hand side', 'middle of the top edge'
_KNOWN = _TOP | _BOTTOM | _FAR | _NEAR | _LEFT | _RIGHT | _PLACE | _FILLER
# how people say where the robot is; rewritten to 'far'/'near' before the words are read
_ROBOT_PHRASES = (
    (r"\b(?:away|far|farthest|furthest) from (?:the )?robot\b|\bopposite (?:the )?robot\b", "far"),
    (
        r"\b(?:near|nearest|close|closest) to (?:the )?robot\b|\b(?:near|nearest) (?:the )?robot\b"
        r"|\bby (?:the )?robot\b|\bon (?:the )?robot(?:'s)? side\b|\b(?:the )?robot(?:'s)? side\b",
        "near",
    ),
)


def position_name(text: str) -> str | None:
    """The named position `text` means ('top left corner', ..., 'middle'), or None when it does not
    name exactly one of them. Exact names map to themselves."""
    text = re.sub(r"\bof (?:the )?table\b|\btable(?:'s)?\b", " ", text.lower().replace("-", " "))
    for pattern, word in _ROBOT_PHRASES:
        text = re.sub(pattern, word, text)
    if re.search(r"[^a-z ,']", text):  # digits ('5 cm'), brackets, ...: not a place name
        return None
    words = re.findall(r"[a-z]+", text.replace("'s", ""))
    if not words or not set(words) <= _KNOWN or _relation(words):
        return None
    vertical = _one_of(words, _TOP, _BOTTOM, "top", "bottom")
    horizontal = _one_of(words, _LEFT, _RIGHT, "left", "right")
    far_near = _one_of(words, _FAR, _NEAR, "top", "bottom")
    if "" in (vertical, horizontal, far_near):  # both ways at once: 'top bottom corner'
        return None
    corner, side = bool(_CORNER & set(words)), bool(_SIDE & set(words))
    middle = bool(_MIDDLE & set(words))
    if far_near and middle and not side:  # 'near the middle' is a place relative to the middle
        return None
    # 'far'/'near' say how far from the robot, but only intensify a place already named left or
    # right ('the far right edge', 'the far left')
    if vertical is None and far_near and (corner or not horizontal):
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


def is_place_noun(word: str) -> bool:
    """'corner', 'side', 'edge', ...: a word for a part of the table ('the corner nearest the robot')."""
    return word.lower() in _CORNER | _SIDE


def mentions_place(text: str) -> bool:
    """Whether `text` uses a word for a kind of place (corner, side, edge, middle, ...)."""
    return bool(_PLACE & set(re.findall(r"[a-z]+", text.lower())))


def _relation(words: list[str]) -> bool:
    """A direction 'of' something ('left of the middle'): a place beside another, not one of the nine.
    'of' may only follow a place word ('the middle of the top edge')."""
    return any(w == "of" and (i == 0 or words[i - 1] not in _PLACE) for i, w in enumerate(words)) or (
        "on" in words and words[words.index("on") + 1 : words.index("on") + 2] == ["top"]  # 'on top'
    )


def _one_of(words: list[str], first: set[str], second: set[str], a: str, b: str) -> str | None:
    """`a` when only `first` is named, `b` when only `second`, None for neither, '' for both."""
    has_a, has_b = bool(first & set(words)), bool(second & set(words))
    if has_a and has_b:
        return ""
    return a if has_a else b if has_b else None
