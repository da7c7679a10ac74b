"""The tabletop task suite: task families (generator + checker) and the full-stack task runner.

Two splits: `seen` (`FAMILIES`, the original templates, kept as the regression set) and `unseen`
(`unseen.FAMILIES`, commands written from each task's meaning; see unseen.py).
`generate_tasks(seeds, families, split)` lists tasks seed-major (every family's seed 0, then every
family's seed 1, ...) so `--limit` gives a mix.
"""

from __future__ import annotations

from capstan.bench.tabletop.families_multi import Arrangement, Sorting, Stacking
from capstan.bench.tabletop.families_place import (
    CornersSides,
    MoveBy,
    PickPlace,
    RelativePosition,
    Superlative,
    UnseenColors,
)
from capstan.bench.tabletop.families_talk import MultiTurn, Question, Refusal
from capstan.bench.tabletop.task import Family, Task, Verdict
from capstan.bench.tabletop.unseen import FAMILIES as UNSEEN_FAMILIES

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        PickPlace(),
        Stacking(),
        Sorting(),
        CornersSides(),
        RelativePosition(),
        MoveBy(),
        Arrangement(),
        Superlative(),
        MultiTurn(),
        Question(),
        UnseenColors(),
        Refusal(),
    )
}


SPLITS: dict[str, dict[str, Family]] = {"seen": FAMILIES, "unseen": UNSEEN_FAMILIES}


def generate_tasks(seeds: int | range, families: list[str] | None = None, split: str = "seen") -> list[Task]:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    known = SPLITS[split]
    names = families or list(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown task families {unknown} in the {split} split; known: {', '.join(known)}")
    seed_range = range(seeds) if isinstance(seeds, int) else seeds
    return [known[n].generate(s) for s in seed_range for n in names]


def family_of(task: Task) -> Family:
    return SPLITS[task.split][task.family]


__all__ = [
    "FAMILIES",
    "SPLITS",
    "UNSEEN_FAMILIES",
    "Family",
    "Task",
    "Verdict",
    "family_of",
    "generate_tasks",
]
