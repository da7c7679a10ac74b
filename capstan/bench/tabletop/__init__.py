"""The tabletop task suite: task families (generator + checker) and the full-stack task runner.

`FAMILIES` maps family names to instances; `generate_tasks(seeds, families)` lists tasks
seed-major (every family's seed 0, then every family's seed 1, ...) so `--limit` gives a mix.
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


def generate_tasks(seeds: int | range, families: list[str] | None = None) -> list[Task]:
    names = families or list(FAMILIES)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown task families {unknown}; known: {', '.join(FAMILIES)}")
    seed_range = range(seeds) if isinstance(seeds, int) else seeds
    return [FAMILIES[n].generate(s) for s in seed_range for n in names]


__all__ = ["FAMILIES", "Family", "Task", "Verdict", "generate_tasks"]
