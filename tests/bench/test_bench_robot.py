"""`capstan bench robot`'s scenes and verdicts (the live run itself is in tests/franka)."""

from __future__ import annotations

import math
import random

from capstan.bench.robot import BLOCKS, SCENE_X, SCENE_Y, SPACING_M, _placement_problem, _scene


def test_scenes_are_seeded_reachable_and_leave_room_between_blocks_and_target():
    sizes = set()
    for seed in range(200):
        names, spots, target = _scene(random.Random(seed))
        assert (names, spots, target) == _scene(random.Random(seed))
        sizes.add(len(names))
        assert set(names) <= set(BLOCKS) and len(set(names)) == len(names)
        points = [*spots, target]
        for x, y in points:
            assert SCENE_X[0] <= x <= SCENE_X[1] and SCENE_Y[0] <= y <= SCENE_Y[1]
        assert all(math.dist(a, b) >= SPACING_M for i, a in enumerate(points) for b in points[i + 1 :])
    assert sizes == {2, 3}


def test_a_block_counts_as_placed_only_on_the_table_within_2_cm_of_the_target():
    assert _placement_problem([0.1, 0.5, 0.02], [0.11, 0.51]) is None
    assert "cm from the target" in _placement_problem([0.1, 0.5, 0.02], [0.1, 0.525])
    assert "not resting on the table" in _placement_problem([0.1, 0.5, 0.09], [0.1, 0.5])
