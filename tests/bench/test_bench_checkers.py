"""Every task family's checker accepts the outcome of a correct hand-written program and rejects
a wrong one, on the real stack: the task runner drives lmp.Engine.run_command over the real sim,
PolicyAPI and sandbox, with a scripted LLM that answers each command with our program."""

from __future__ import annotations

import pytest
from scripted_tasks import assert_judged_right, run_scripted

from capstan.bench.tabletop import FAMILIES, Task

pytestmark = pytest.mark.slow


def task(family: str, seed: int) -> Task:
    return FAMILIES[family].generate(seed)


# (family, seed, correct programs, wrong programs); {p[...]} are filled from the task's params.
CASES = [
    (
        "pick_place",
        0,
        ["put_first_on_second('{p[block]}', '{p[bowl]}')"],
        ["b = [x for x in bowls if x != '{p[bowl]}'][0]\nput_first_on_second('{p[block]}', b)"],
    ),
    (
        "unseen_colors",
        1,
        ["put_first_on_second('{p[block]}', '{p[other]}')"],
        ["put_first_on_second('{p[other]}', '{p[block]}')"],
    ),
    (
        "stacking",
        0,
        ["put_first_on_second('{p[upper]}', '{p[lower]}')"],
        ["put_first_on_second('{p[lower]}', '{p[upper]}')"],
    ),
    (
        "stacking",
        3,
        ["b = {p[blocks]}\nput_first_on_second(b[0], b[1])\nput_first_on_second(b[2], b[0])"],
        ["b = {p[blocks]}\nput_first_on_second(b[1], b[0])\nput_first_on_second(b[2], b[1])"],
    ),
    (
        "sorting",
        0,
        ["for c in {p[colors]}:\n    put_first_on_second(c + ' block', c + ' bowl')"],
        ["c = {p[colors]}\nput_first_on_second(c[0] + ' block', c[1] + ' bowl')"],
    ),
    (
        "corners_sides",
        0,
        ["put_first_on_second('{p[block]}', get_named_position('{p[target]}'))"],
        ["put_first_on_second('{p[block]}', get_named_position('middle'))"],
    ),
    (
        "relative",
        0,
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[ref]}') + np.array([-0.1, 0.0]))"],
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[ref]}') + np.array([0.1, 0.0]))"],
    ),
    (
        "relative",
        4,
        ["put_first_on_second('{p[block]}', (get_obj_pos('{p[ref]}') + get_obj_pos('{p[ref2]}')) / 2)"],
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[ref2]}') + np.array([0.12, 0.0]))"],
    ),
    (
        "move_by",
        1,
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[block]}') + np.array({p[offset]}))"],
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[block]}') - np.array({p[offset]}))"],
    ),
    (
        "arrangement",
        0,
        [
            (
                "xs = [-0.15, 0.0, 0.15]\nfor x, b in zip(xs, sorted(blocks, key=lambda n: "
                "get_obj_pos(n)[0])):\n"
                "    put_first_on_second(b, [x, 0.5])"
            )
        ],
        ["for b in blocks[1:]:\n    put_first_on_second(b, blocks[0])"],
    ),
    (
        "superlative",
        0,
        ["b = min(blocks, key=lambda n: get_obj_pos(n)[0])\nput_first_on_second(b, '{p[bowl]}')"],
        ["b = max(blocks, key=lambda n: get_obj_pos(n)[0])\nput_first_on_second(b, '{p[bowl]}')"],
    ),
    (
        "multi_turn",
        0,
        ["pick('{p[block]}')", "place('{p[bowl]}')"],
        ["pick('{p[block]}')", "place('{p[other]}')"],
    ),
    (
        "multi_turn",
        1,
        ["put_first_on_second('{p[block]}', '{p[bowl]}')", "undo()"],
        ["put_first_on_second('{p[block]}', '{p[bowl]}')", "say('done')"],
    ),
    (
        "question",
        0,
        ["say('There are ' + str(len(blocks)) + ' blocks.')"],
        ["say('There are ' + str(len(blocks) + 1) + ' blocks.')"],
    ),
    (
        "question",
        1,
        [
            (
                "b = min(blocks, key=lambda n: np.linalg.norm(get_obj_pos(n) - get_obj_pos('{p[bowl]}')))\n"
                "say('The ' + b + ' is closest.')"
            )
        ],
        [
            (
                "b = max(blocks, key=lambda n: np.linalg.norm(get_obj_pos(n) - get_obj_pos('{p[bowl]}')))\n"
                "say('The ' + b + ' is closest.')"
            )
        ],
    ),
    (  # a full answer names the bowl of the question before the block's colour
        "question",
        1,
        [
            (
                "b = min(blocks, key=lambda n: np.linalg.norm(get_obj_pos(n) - get_obj_pos('{p[bowl]}')))\n"
                "say('The block nearest the {p[bowl]} is ' + b.split()[0] + '.')"
            )
        ],
        [
            (
                "b = max(blocks, key=lambda n: np.linalg.norm(get_obj_pos(n) - get_obj_pos('{p[bowl]}')))\n"
                "say('The block nearest the {p[bowl]} is ' + b.split()[0] + '.')"
            )
        ],
    ),
    (
        "refusal",
        1,
        ["say('I cannot do that: there is no {p[missing]} block.')"],
        ["put_first_on_second(blocks[0], bowls[0])\nsay('Done.')"],
    ),
]


@pytest.mark.parametrize(("family", "seed", "good", "bad"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_checker_accepts_correct_and_rejects_wrong(sandbox, family, seed, good, bad):
    assert_judged_right(sandbox, task(family, seed), good, bad)


def test_every_family_is_covered():
    assert {c[0] for c in CASES} == set(FAMILIES)


def test_code_errors_and_timeouts_are_categorized(sandbox):
    t = task("pick_place", 2)
    crashed = run_scripted(sandbox, t, ["put_first_on_second('no such block', bowls[0])"])
    assert not crashed["success"] and crashed["category"] == "code_error", crashed
    syntax = run_scripted(sandbox, t, ["put_first_on_second(blocks[0], "])
    assert syntax["category"] == "code_error", syntax
    slow = run_scripted(sandbox, t, ["while True:\n    pass"], exec_timeout_s=1.5)
    assert not slow["success"] and slow["category"] == "timeout", slow


def test_grasp_errors_the_program_caused_are_code_errors():
    from capstan.bench.tabletop.runner import categorize

    def turn(message):
        return [{"status": "failed", "error": {"kind": "primitive", "message": message}}]

    assert (
        categorize(turn("GraspError: already holding 'blue block'"), [], ["GraspError"], False)
        == "code_error"
    )
    assert categorize(turn("GraspError: closed on nothing"), [], ["GraspError"], False) == "physics_failure"
