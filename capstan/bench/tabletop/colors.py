"""Which object colors the few-shot prompts' examples never (or most rarely) mention.

The seen split's `unseen_colors` family uses them to test generalization beyond the examples. Counted over
every example (scene, query and code) of every prompts/*.yaml; ties are broken by name so the
choice is deterministic. If the prompts mention every color, the least-mentioned are used and
`color_counts()` (shown in the report) says so.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import yaml

from capstan.primitives.geometry import CLASSIC_COLORS

ALL_COLORS = CLASSIC_COLORS  # the seen families keep the palette their recordings used


@functools.cache
def color_counts(colors: tuple[str, ...] = ALL_COLORS) -> dict[str, int]:
    """How many prompt examples mention each of `colors`."""
    counts = dict.fromkeys(colors, 0)
    for entry in resources.files("capstan.prompts").iterdir():
        if not entry.name.endswith((".yaml", ".yml")):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        for example in data.get("examples") or []:
            words = set(re.findall(r"[a-z]+", str(example).lower()))
            for color in colors:
                counts[color] += color in words
    return counts


@functools.cache
def unseen_colors(k: int = 4) -> tuple[str, ...]:
    counts = color_counts()
    return tuple(sorted(sorted(ALL_COLORS, key=lambda c: (counts[c], c))[:k]))
