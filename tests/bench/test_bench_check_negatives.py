"""No checker can be passed by doing nothing or by chance. For every family of both splits: the
scene left as it was (every phrasing, nothing said) fails, and of 50 seeded random programs
(1-4 `put_first_on_second` calls between the task's objects, run in the real simulator) at most
5% pass."""

from __future__ import annotations

import contextlib
import random

import pytest

from capstan.bench.tabletop import SPLITS, Task, family_of

pytestmark = pytest.mark.slow

FAMILIES = [(split, name) for split, fams in SPLITS.items() for name in fams]
RANDOM_PROGRAMS = 50
MAX_PASS_RATE = 0.05


def variants(split: str, name: str) -> list[Task]:
    family = SPLITS[split][name]
    return [family.generate(seed) for seed in range(len(family.phrasings))]


@pytest.mark.parametrize(("split", "name"), FAMILIES, ids=[f"{s}-{n}" for s, n in FAMILIES])
def test_doing_nothing_fails_every_phrasing(split, name):
    from capstan.sim import World

    passed = []
    for task in variants(split, name):
        world = World(task.scene)
        try:
            states = [world.state()] * (len(task.commands) + 1)
        finally:
            world.close()
        verdict = family_of(task).check(task.params, states, [])
        if verdict.ok:
            passed.append(task.commands)
    assert not passed, f"doing nothing passes {passed}"


def random_program(rng: random.Random, objects: list[str]) -> list[tuple[str, str]]:
    return [tuple(rng.sample(objects, 2)) for _ in range(rng.randint(1, 4))]  # type: ignore[misc]


@pytest.mark.parametrize(("split", "name"), FAMILIES, ids=[f"{s}-{n}" for s, n in FAMILIES])
def test_random_programs_rarely_pass(split, name):
    from capstan.primitives import PolicyAPI
    from capstan.primitives.errors import PrimitiveError
    from capstan.sim import World

    tasks = variants(split, name)
    rng = random.Random(f"random-programs-{split}-{name}")
    passed = []
    worlds = {t.id: World(t.scene) for t in tasks}
    snaps = {tid: w.snapshot() for tid, w in worlds.items()}
    try:
        for i in range(RANDOM_PROGRAMS):
            task = tasks[i % len(tasks)]  # every phrasing's checker gets its share
            world = worlds[task.id]
            world.restore(snaps[task.id])
            api = PolicyAPI(world)
            states = [world.state()]
            for _command in task.commands:
                for obj, target in random_program(rng, sorted(world.state()["objects"])):
                    with contextlib.suppress(PrimitiveError):  # a refusal is part of the outcome
                        api.put_first_on_second(obj, target)
                states.append(world.state())
            if family_of(task).check(task.params, states, list(api.said)).ok:
                passed.append(task.id)
    finally:
        for w in worlds.values():
            w.close()
    assert len(passed) <= MAX_PASS_RATE * RANDOM_PROGRAMS, (
        f"{len(passed)} of {RANDOM_PROGRAMS} passed: {passed}"
    )
