"""The unseen split's checkers, where they judge something the seen ones do not (an ordering
constraint, an exception, a size, "beside" a bowl, the robot's side, infeasible requests), accept
a correct hand-written program and reject a wrong one, on the real stack."""

from __future__ import annotations

import pytest
from scripted_tasks import assert_judged_right

from capstan.bench.tabletop import UNSEEN_FAMILIES

pytestmark = pytest.mark.slow

CORNERS = "['top left corner', 'top right corner', 'bottom left corner', 'bottom right corner']"
PUT_AT = (
    "for b, p in zip(sorted(blocks, key=lambda n: get_obj_pos(n)[0]), {pts}):\n    put_first_on_second(b, p)"
)

# (family, seed, correct programs, wrong programs); {p[...]} are filled from the task's params.
CASES = [
    (
        "stacking",
        3,
        ["b = {p[blocks]}\nput_first_on_second(b[1], b[2])\nput_first_on_second(b[0], b[1])"],
        ["b = {p[blocks]}\nput_first_on_second(b[0], b[2])\nput_first_on_second(b[1], b[0])"],
    ),
    (
        "stacking",
        5,
        ["o = {p[order]}\nput_first_on_second(o[1], o[0])\nput_first_on_second(o[2], o[1])"],
        ["o = {p[order]}\nput_first_on_second(o[2], o[0])\nput_first_on_second(o[1], o[2])"],
    ),
    (
        "sorting",
        4,
        ["for c in {p[colors]}:\n    put_first_on_second(c + ' block', c + ' bowl')"],
        [
            "for c in {p[colors]} + ['{p[except]}'.split()[0]]:\n    put_first_on_second(c + ' block', c + ' "
            "bowl')"
        ],
    ),
    (
        "relative",
        0,
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[ref]}') + np.array([0.11, 0.0]))"],
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[ref]}') + np.array([0.05, 0.0]))"],
    ),
    (
        "move_by",
        0,
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[block]}') + np.array({p[offset]}))"],
        ["put_first_on_second('{p[block]}', get_obj_pos('{p[block]}') + 0.3 * np.array({p[offset]}))"],
    ),
    (
        "arrangement",
        2,
        [PUT_AT.format(pts="[[-0.05, 0.4634], [0.0, 0.55], [0.05, 0.4634]]")],
        [PUT_AT.format(pts="[[-0.1, 0.4268], [0.0, 0.6], [0.1, 0.4268]]")],
    ),
    (
        "arrangement",
        4,
        [PUT_AT.format(pts="[[-0.12, 0.5], [-0.04, 0.5], [0.04, 0.5], [0.12, 0.5]]")],
        [PUT_AT.format(pts="[[-0.075, 0.5], [-0.025, 0.5], [0.025, 0.5], [0.075, 0.5]]")],
    ),
    (
        "arrangement",
        5,
        [PUT_AT.format(pts="[[-0.08, 0.5], [0.0, 0.58], [0.0, 0.42], [0.08, 0.5]]")],
        [PUT_AT.format(pts="[[0.04, 0.55], [0.12, 0.63], [0.12, 0.47], [0.2, 0.55]]")],
    ),
    (
        "superlative",
        4,
        ["b = min(blocks, key=lambda n: get_obj_pos(n)[1])\nput_first_on_second(b, '{p[bowl]}')"],
        ["b = max(blocks, key=lambda n: get_obj_pos(n)[1])\nput_first_on_second(b, '{p[bowl]}')"],
    ),
    (
        "infeasible",
        0,
        [
            (
                f"for b, c in zip(blocks, {CORNERS}):\n    put_first_on_second(b, get_named_position(c))\n"
                "say('There are only four corners, so one block is left over.')"
            )
        ],
        [f"for b, c in zip(blocks, {CORNERS}):\n    put_first_on_second(b, get_named_position(c))"],
    ),
    (
        "infeasible",
        1,
        [
            (
                "p = get_obj_pos('{p[block]}')\nput_first_on_second('{p[block]}', [0.23, p[1]])\n"
                "say('I could only take it to the edge of the table.')"
            )
        ],
        ["say('I cannot move it that far.')"],
    ),
    (
        "infeasible",
        2,
        [
            (
                "put_first_on_second(blocks[0], bowls[0])\nput_first_on_second(blocks[1], bowls[1])\n"
                "say('There are only two bowls, so one block stays out.')"
            )
        ],
        [
            (
                "put_first_on_second(blocks[0], bowls[0])\nput_first_on_second(blocks[1], bowls[0])\n"
                "say('There are only two bowls.')"
            )
        ],
    ),
    (
        "infeasible",
        3,
        ["put_first_on_second('{p[block]}', '{p[bowl]}')\nsay('There is no {p[missing]} block.')"],
        ["say('There is no {p[missing]} block.')"],
    ),
    (
        "infeasible",
        4,
        [
            (
                "put_first_on_second(blocks[1], blocks[0])\nput_first_on_second(blocks[2], blocks[1])\n"
                "say('There are only three blocks, so the tower has three.')"
            )
        ],
        ["put_first_on_second(blocks[1], blocks[0])\nput_first_on_second(blocks[2], blocks[1])"],
    ),
]


@pytest.mark.parametrize(("family", "seed", "good", "bad"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_unseen_checker_accepts_correct_and_rejects_wrong(sandbox, family, seed, good, bad):
    # a wrong target may also be refused before anything moves (a bowl's rim): a code error
    assert_judged_right(
        sandbox,
        UNSEEN_FAMILIES[family].generate(seed),
        good,
        bad,
        categories=("wrong_program", "physics_failure", "code_error"),
    )
