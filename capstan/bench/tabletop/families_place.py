"""Families that move one object somewhere: into a bowl, to a named position, by a distance,
relative to other objects, or chosen by a superlative."""

from __future__ import annotations

import math

from capstan.bench.tabletop import geometry as g
from capstan.bench.tabletop.colors import ALL_COLORS, unseen_colors
from capstan.bench.tabletop.layout import inside, sample_positions, scene_objects
from capstan.bench.tabletop.task import Family, Task, Verdict
from capstan.primitives.geometry import named_positions
from capstan.sim.scene import WORKSPACE


def _blocks_and_bowls(rng, colors, n_blocks: int, n_bowls: int) -> tuple[list[str], list[str]]:
    return (
        [f"{c} block" for c in rng.sample(colors, n_blocks)],
        [f"{c} bowl" for c in rng.sample(colors, n_bowls)],
    )


class PickPlace(Family):
    name = "pick_place"
    phrasings = (
        "put the {block} in the {bowl}",
        "place the {block} into the {bowl}",
        "pick up the {block} and put it in the {bowl}",
        "move the {block} into the {bowl}",
        "drop the {block} in the {bowl}",
    )

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        blocks, bowls = _blocks_and_bowls(rng, list(ALL_COLORS), rng.choice((2, 3)), rng.choice((2, 3)))
        block, bowl = blocks[0], bowls[0]
        return self.task(
            seed,
            {"objects": blocks + bowls},
            self.phrase(seed, block=block, bowl=bowl),
            {"block": block, "bowl": bowl},
        )

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        end, block, bowl = states[-1], params["block"], params["bowl"]
        return Verdict.all_of(
            [
                (
                    g.in_bowl(end, block, bowl),
                    f"{block} at {g.fmt(g.xy(end, block))} is not in the {bowl} at {g.fmt(g.xy(end, bowl))}",
                ),
                g.only_moved(states, {block}),
            ]
        )


class UnseenColors(PickPlace):
    """Pick-and-place and stacking with the colors the prompt examples use least (see colors.py)."""

    name = "unseen_colors"
    phrasings = (
        "put the {block} in the {bowl}",
        "stack the {block} on top of the {other}",
        "place the {block} into the {bowl}",
        "put the {block} on the {other}",
    )

    counts = (3, 3)  # blocks, bowls: beyond the two a command names, distractors

    def palette(self) -> list[str]:
        return list(unseen_colors())

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        blocks, bowls = _blocks_and_bowls(rng, self.palette(), *self.counts)
        stack = "bowl}" not in self.phrasings[seed % len(self.phrasings)]
        params = {"block": blocks[0], "other": blocks[1]} if stack else {"block": blocks[0], "bowl": bowls[0]}
        text = self.phrase(seed, block=blocks[0], bowl=bowls[0], other=blocks[1])
        return self.task(seed, {"objects": blocks + bowls}, text, params)

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        if "bowl" in params:
            return super().check(params, states, said)
        end, block, other = states[-1], params["block"], params["other"]
        return Verdict.all_of(
            [
                (g.on_top(end, block, other), f"{block} is not on top of the {other}"),
                g.only_moved(states, {block}),
            ]
        )


NAMED_TARGETS = (
    ("top left corner", "move the {block} to the top left corner"),
    ("bottom right corner", "put the {block} in the bottom right corner of the table"),
    ("top right corner", "place the {block} in the top right corner"),
    ("bottom left corner", "move the {block} to the bottom left corner of the table"),
    ("left side", "put the {block} on the left side of the table"),
    ("top side", "move the {block} to the middle of the top side"),
    ("right side", "place the {block} at the right side of the table"),
    ("middle", "put the {block} in the middle of the table"),
    ("bottom side", "move the {block} to the bottom side"),
)


class CornersSides(Family):
    name = "corners_sides"
    phrasings = tuple(text for _, text in NAMED_TARGETS)
    targets = tuple(target for target, _ in NAMED_TARGETS)
    tol = 0.06

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        target = self.targets[seed % len(self.targets)]
        blocks, bowls = _blocks_and_bowls(rng, list(ALL_COLORS), 3, 1)
        goal = named_positions(WORKSPACE)[target]
        pos = sample_positions(
            rng,
            blocks + bowls,
            accept=lambda pos: (
                math.dist(pos[blocks[0]], goal) > 0.12
                and all(math.dist(q, goal) > 0.1 for n, q in pos.items() if n != blocks[0])
            ),
        )
        return self.task(
            seed,
            {"objects": scene_objects(pos)},
            self.phrase(seed, block=blocks[0]),
            {"block": blocks[0], "target": target},
        )

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        end, block = states[-1], params["block"]
        goal = end["named_positions"][params["target"]]
        d = g.dist(g.xy(end, block), goal)
        return Verdict.all_of(
            [
                (d < self.tol, f"{block} is {d:.3f} m from the {params['target']} (tolerance {self.tol})"),
                (g.on_table(end, block), f"{block} is not resting on the table"),
                g.only_moved(states, {block}),
            ]
        )


DIRECTIONS = {"right": (1, 0), "left": (-1, 0), "up": (0, 1), "down": (0, -1)}
ROOM = {"left": (-0.12, 0), "right": (0.12, 0), "above": (0, 0.12), "below": (0, -0.12)}  # where to put it
WAYS = {"right": "to the right", "left": "to the left", "up": "up", "down": "down"}


class MoveBy(Family):
    name = "move_by"
    phrasings = (
        "move the {block} {cm} cm {way}",
        "shift the {block} {way} by {cm} centimeters",
        "move the {block} {cm} centimeters {way}",
        "slide the {block} {cm}cm {way}",
    )
    tol = 0.03

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        direction = ("right", "left", "up", "down")[(seed // len(self.phrasings)) % 4]
        cm = rng.choice((5, 8, 10, 12, 15))
        dx, dy = (v * cm / 100 for v in DIRECTIONS[direction])
        blocks, bowls = _blocks_and_bowls(rng, list(ALL_COLORS), 2, 1)
        block = blocks[0]

        def ok(pos):
            goal = (pos[block][0] + dx, pos[block][1] + dy)
            return inside(goal, 0.04) and all(math.dist(goal, q) > 0.1 for n, q in pos.items() if n != block)

        pos = sample_positions(rng, blocks + bowls, accept=ok)
        text = self.phrase(seed, block=block, cm=str(cm), way=WAYS[direction])
        return self.task(seed, {"objects": scene_objects(pos)}, text, {"block": block, "offset": [dx, dy]})

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        start, end, block = states[0], states[-1], params["block"]
        p0 = g.xy(start, block)
        goal = (p0[0] + params["offset"][0], p0[1] + params["offset"][1])
        d = g.dist(g.xy(end, block), goal)
        return Verdict.all_of(
            [
                (d < self.tol, f"{block} ended {d:.3f} m from {g.fmt(goal)} (tolerance {self.tol})"),
                (g.on_table(end, block), f"{block} is not resting on the table"),
                g.only_moved(states, {block}),
            ]
        )


class RelativePosition(Family):
    """left of / right of / above / below another object, and between two objects."""

    name = "relative"
    phrasings = (
        "put the {block} to the left of the {ref}",
        "place the {block} to the right of the {ref}",
        "put the {block} above the {ref}",
        "move the {block} below the {ref}",
        "put the {block} between the {ref} and the {ref2}",
    )
    relations = ("left", "right", "above", "below", "between")
    near, far, side_tol, between_tol = 0.04, 0.25, 0.08, 0.05

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        rel = self.relations[seed % len(self.relations)]
        blocks, bowls = _blocks_and_bowls(rng, list(ALL_COLORS), 2, 2)
        block, ref, ref2 = blocks[0], bowls[0], (bowls[1] if seed % 2 else blocks[1])

        def ok(pos):
            if self.relation_holds(rel, pos[block], pos[ref], pos[ref2], self.near_for(ref))[0]:
                return False  # already true at the start: the task would be trivial
            if rel == "between":
                a, b = pos[ref], pos[ref2]
                mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
                return 0.2 < math.dist(a, b) < 0.35 and all(
                    math.dist(mid, pos[n]) > 0.1 for n in pos if n not in (ref, ref2, block)
                )
            spot = (pos[ref][0] + ROOM[rel][0], pos[ref][1] + ROOM[rel][1])
            return inside(spot, 0.03) and all(
                math.dist(spot, q) > 0.1 for n, q in pos.items() if n not in (ref, block)
            )

        pos = sample_positions(rng, blocks + bowls, accept=ok)
        text = self.phrase(seed, block=block, ref=ref, ref2=ref2)
        return self.task(
            seed,
            {"objects": scene_objects(pos)},
            text,
            {"block": block, "relation": rel, "ref": ref, "ref2": ref2},
        )

    def near_for(self, ref: str) -> float:
        """The least centre distance along the relation's axis."""
        return self.near

    def relation_holds(self, rel: str, p, r, r2, near: float) -> tuple[bool, str]:
        if rel == "between":
            mid = ((r[0] + r2[0]) / 2, (r[1] + r2[1]) / 2)
            d = g.dist(p, mid)
            return (
                d < self.between_tol,
                f"{d:.3f} m from the midpoint {g.fmt(mid)} (tolerance {self.between_tol})",
            )
        along, across = {
            "left": (r[0] - p[0], p[1] - r[1]),
            "right": (p[0] - r[0], p[1] - r[1]),
            "above": (p[1] - r[1], p[0] - r[0]),
            "below": (r[1] - p[1], p[0] - r[0]),
        }[rel]
        ok = near < along < self.far and abs(across) < self.side_tol
        return (
            ok,
            f"offset along {along:.3f} (want {near:.3f}..{self.far}), across {across:.3f} (want < "
            f"{self.side_tol})",
        )

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        end, block, ref, rel = states[-1], params["block"], params["ref"], params["relation"]
        p, r, r2 = g.xy(end, block), g.xy(end, ref), g.xy(end, params["ref2"])
        ok, detail = self.relation_holds(rel, p, r, r2, self.near_for(ref))
        return Verdict.all_of(
            [
                (ok, f"{block} at {g.fmt(p)} is not {rel} the {ref} at {g.fmt(r)}: {detail}"),
                (g.on_table(end, block), f"{block} is not resting on the table"),
                g.only_moved(states, {block}),
            ]
        )


class Superlative(Family):
    """The leftmost / rightmost / topmost block, the block closest to / farthest from a bowl."""

    name = "superlative"
    phrasings = (
        "put the leftmost block in the {bowl}",
        "put the rightmost block in the {bowl}",
        "pick up the block closest to the {ref} and put it in the {bowl}",
        "put the topmost block in the {bowl}",
        "place the block farthest from the {ref} into the {bowl}",
    )
    which = ("leftmost", "rightmost", "closest", "topmost", "farthest")
    margin = 0.05

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        which = self.which[seed % len(self.which)]
        # a third bowl as a distractor: with few objects a random put lands the right one by chance
        blocks, bowls = _blocks_and_bowls(rng, list(ALL_COLORS), 3, 3)
        bowl, ref = bowls[:2]

        def ok(pos):
            vals = sorted(self._score(which, {b: pos[b] for b in blocks}, pos[ref]).values())
            return vals[1] - vals[0] > self.margin

        pos = sample_positions(rng, blocks + bowls, accept=ok)
        return self.task(
            seed,
            {"objects": scene_objects(pos)},
            self.phrase(seed, bowl=bowl, ref=ref),
            {"which": which, "bowl": bowl, "ref": ref},
        )

    @staticmethod
    def _score(which: str, blocks: dict, ref) -> dict[str, float]:
        """Lower is 'more' of the superlative."""
        f = {
            "leftmost": lambda p: p[0],
            "rightmost": lambda p: -p[0],
            "topmost": lambda p: -p[1],
            "closest": lambda p: math.dist(p, ref),
            "farthest": lambda p: -math.dist(p, ref),
        }[which]
        return {n: f(p) for n, p in blocks.items()}

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        start, end = states[0], states[-1]
        blocks = {b: g.xy(start, b) for b in g.names(start, "block")}
        scores = self._score(params["which"], blocks, g.xy(start, params["ref"]))
        target = min(scores, key=scores.get)
        return Verdict.all_of(
            [
                (
                    g.in_bowl(end, target, params["bowl"]),
                    f"the {params['which']} block ({target}) is not in the {params['bowl']}",
                ),
                g.only_moved(states, {target}),
            ]
        )
