"""The unseen split: commands written from each task's meaning, never from the prompts.

`--split seen` keeps the original templates as a regression set; this split is what the suite's
headline number means. Every family here has at least six phrasings covering paraphrase,
politeness, indirect reference ("the one nearest the robot"), units ("12cm", "two inches", "a
hand's width"), negated and conditional commands, and infeasible requests where the right answer
is to do what can be done and say what cannot. `tests/bench/test_bench_unseen_split.py` fails when
a command shares a 4-word sequence with any prompt example (object, colour and number words made
placeholders) and pins this file's hash, so the split cannot quietly drift towards the prompts.

The unseen-colours family uses palette colours that no prompt example mentions
(`primitives.geometry.EXTRA_COLORS`). Other families draw from the classic palette.
"""

from __future__ import annotations

import itertools
import math
import re

from capstan.bench.tabletop import geometry as g
from capstan.bench.tabletop.colors import ALL_COLORS
from capstan.bench.tabletop.families_multi import Arrangement, Sorting, Stacking, tower_order
from capstan.bench.tabletop.families_place import (
    DIRECTIONS,
    CornersSides,
    MoveBy,
    PickPlace,
    RelativePosition,
    Superlative,
    _blocks_and_bowls,
)
from capstan.bench.tabletop.families_place import (
    UnseenColors as SeenUnseenColors,
)
from capstan.bench.tabletop.families_talk import REFUSAL, MultiTurn, Question, Refusal, _said_text
from capstan.bench.tabletop.layout import inside, sample_positions, scene_objects
from capstan.bench.tabletop.task import Family, Task, Verdict
from capstan.primitives.geometry import BLOCK_SIZE, BOWL_RADIUS, CORNER_NAMES, EXTRA_COLORS, named_positions
from capstan.sim.scene import WORKSPACE

SPLIT = "unseen"
COLORS = list(ALL_COLORS)


class _Unseen(Family):
    split = SPLIT

    def variant(self, seed: int) -> int:
        """Which phrasing (and so which meaning) `seed` draws, as `phrase` does."""
        return seed % len(self.phrasings)


class UnseenPickPlace(_Unseen, PickPlace):
    phrasings = (
        "could you drop the {block} into the {bowl}, please?",
        "I'd like the {block} to end up inside the {bowl}",
        "the {bowl} should hold the {block}",
        "take the block nearest the robot and set it in the {bowl}",
        "grab the {color} one and lower it into the {bowl}",
        "if you can see a {bowl}, the {block} goes in it",
    )

    def generate(self, seed: int) -> Task:
        rng, v = self.rng(seed), self.variant(seed)
        colors = rng.sample(COLORS, 7)  # no bowl shares a block's colour: "the {color} one" is a block
        blocks, bowls = [f"{c} block" for c in colors[:4]], [f"{c} bowl" for c in colors[4:]]
        pos = sample_positions(
            rng, blocks + bowls, accept=lambda p: v != 3 or _clear_min(p, blocks, lambda q: q[1])
        )
        block = min(blocks, key=lambda b: pos[b][1]) if v == 3 else blocks[0]
        text = self.phrase(seed, block=block, bowl=bowls[0], color=block.split()[0])
        return self.task(seed, {"objects": scene_objects(pos)}, text, {"block": block, "bowl": bowls[0]})


def _clear_min(pos, names, key, margin: float = 0.05) -> bool:
    vals = sorted(key(pos[n]) for n in names)
    return vals[1] - vals[0] > margin


class UnseenStacking(_Unseen, Stacking):
    phrasings = (
        "set the {a} down on the {b}, please",
        "I want the {a} resting on top of the {b}",
        "make one pile out of all three blocks",
        "build a tower so that the {a} ends up on top",
        "pile every block onto the {b}",
        "put the {a} on the {b}, and then the {c} on the {a}",
    )

    def generate(self, seed: int) -> Task:
        rng, v = self.rng(seed), self.variant(seed)
        colors = rng.sample(COLORS, 6)
        a, b, c = (f"{x} block" for x in colors[:3])
        bowls = [f"{x} bowl" for x in colors[3:]]  # distractors
        params: dict = {"blocks": [a, b, c]}
        if v < 2:
            params = {"upper": a, "lower": b}
        elif v == 3:
            params["top"] = a
        elif v == 4:
            params["bottom"] = b
        elif v == 5:
            params["order"] = [b, a, c]
        return self.task(seed, {"objects": [a, b, c, *bowls]}, self.phrase(seed, a=a, b=b, c=c), params)

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        verdict = super().check(params, states, said)
        if not verdict.ok or "upper" in params:
            return verdict
        order = tower_order(states[-1], params["blocks"]) or []
        if "top" in params and order[-1] != params["top"]:
            return Verdict(False, f"the tower's top block is the {order[-1]}, not the {params['top']}")
        if "order" in params and order != params["order"]:
            return Verdict(False, f"the tower is {order} bottom-up, not {params['order']}")
        return verdict


class UnseenSorting(_Unseen, Sorting):
    phrasings = (
        "every block has a bowl of its own color: put each one there",
        "match the blocks to the bowls by color",
        "could you tidy up by putting each block into the bowl that shares its colour?",
        "group each block with its same-coloured bowl",
        "every block except the {skip} one goes into the bowl matching its color",
        "leave the {skip} block alone and sort the others into their matching bowls",
    )

    def generate(self, seed: int) -> Task:
        rng, v = self.rng(seed), self.variant(seed)
        colors = rng.sample(COLORS, 3)
        objects = [f"{c} block" for c in colors] + [f"{c} bowl" for c in rng.sample(colors, 3)]
        params: dict = {"colors": colors}
        if v >= 4:
            params = {"colors": colors[1:], "except": f"{colors[0]} block"}
        return self.task(seed, {"objects": objects}, self.phrase(seed, skip=colors[0]), params)

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        verdict = super().check(params, states, said)
        if "except" not in params:
            return verdict
        kept = params["except"] not in g.moved(states[0], states[-1])
        return Verdict.all_of([(verdict.ok, verdict.reason), (kept, f"the {params['except']} was moved")])


UNSEEN_TARGETS = (
    ("top right corner", "take the {block} to the far right corner, away from the robot"),
    ("middle", "the {block} belongs in the centre of the table"),
    ("bottom left corner", "bring the {block} to the left-hand corner nearest the robot"),
    ("right side", "move the {block} to the right edge of the table, halfway along it"),
    ("top left corner", "please set the {block} down in the upper left corner"),
    ("bottom side", "put the {block} by the table edge closest to the robot, centred"),
)


class UnseenCornersSides(_Unseen, CornersSides):
    phrasings = tuple(text for _, text in UNSEEN_TARGETS)
    targets = tuple(target for target, _ in UNSEEN_TARGETS)


class UnseenRelative(_Unseen, RelativePosition):
    """A block "beside" an object must not overlap it: for a bowl, clear of the rim."""

    phrasings = (
        "set the {block} down just to the right of the {ref}",
        "I'd like the {block} on the far side of the {ref}, away from the robot",
        "place the {block} on the robot's side of the {ref}",
        "move the {block} so that it sits left of the {ref}",
        "put the {block} halfway between the {ref} and the {ref2}",
        "could you put the {block} right beside the {ref}, on its left?",
    )
    relations = ("right", "above", "below", "left", "between", "left")

    def near_for(self, ref: str) -> float:
        return (BOWL_RADIUS if ref.endswith("bowl") else BLOCK_SIZE / 2) + BLOCK_SIZE / 2


class UnseenMoveBy(_Unseen, MoveBy):
    """Distances in other units and words; "up" is away from the robot."""

    phrasings = (
        "nudge the {block} two inches to the left",
        "shift the {block} a hand's width toward the robot",
        "move the {block} 12cm away from the robot",
        "push the {block} to the right by about a decimetre",
        "please move the {block} leftwards, roughly 7 centimetres",
        "take the {block} 0.1 m further from the robot",
    )
    moves = (("left", 0.0508), ("down", 0.10), ("up", 0.12), ("right", 0.10), ("left", 0.07), ("up", 0.10))
    tol = 0.035

    def generate(self, seed: int) -> Task:
        rng, v = self.rng(seed), self.variant(seed)
        direction, metres = self.moves[v]
        dx, dy = (c * metres for c in DIRECTIONS[direction])
        blocks, bowls = _blocks_and_bowls(rng, COLORS, 2, 1)
        block = blocks[0]

        def ok(pos):
            goal = (pos[block][0] + dx, pos[block][1] + dy)
            return inside(goal, 0.04) and all(math.dist(goal, q) > 0.1 for n, q in pos.items() if n != block)

        pos = sample_positions(rng, blocks + bowls, accept=ok)
        return self.task(
            seed,
            {"objects": scene_objects(pos)},
            self.phrase(seed, block=block),
            {"block": block, "offset": [dx, dy]},
        )


class UnseenArrangement(_Unseen, Arrangement):
    phrasings = (
        "put the blocks in a row that runs from left to right",
        "arrange the blocks in a column pointing away from the robot",
        "form a triangle out of the three blocks with sides of about 10 cm",
        "space the four blocks evenly around a ring",
        "make a left-to-right row of blocks with roughly 8 cm between neighbours",
        "set the blocks out on a ring whose centre is the table's centre",
    )
    shapes = (
        ("horizontal line", 3),
        ("vertical line", 3),
        ("triangle", 3),
        ("circle", 4),
        ("horizontal line", 4),
        ("circle", 4),
    )
    size_tol = 0.03

    def generate(self, seed: int) -> Task:
        rng, v = self.rng(seed), self.variant(seed)
        shape, n = self.shapes[v]
        params: dict = {"shape": shape}
        if v == 2:
            params["side"] = 0.10
        elif v == 4:
            params["spacing"] = 0.08
        elif v == 5:
            params["center"] = named_positions(WORKSPACE)["middle"]
        colors = rng.sample(COLORS, n)
        return self.task(seed, {"objects": [f"{c} block" for c in colors]}, self.phrase(seed), params)

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        verdict = super().check(params, states, said)
        end = states[-1]
        pts = sorted((g.xy(end, b) for b in g.names(end, "block")), key=lambda p: p[0])
        sizes: list[tuple[bool, str]] = []
        if "side" in params:
            sides = [math.dist(p, q) for i, p in enumerate(pts) for q in pts[i + 1 :]]
            off = max(abs(s - params["side"]) for s in sides)
            sides_text = ", ".join(f"{s:.3f}" for s in sides)
            sizes.append(
                (off < self.size_tol, f"sides {sides_text} m, want {params['side']} ± {self.size_tol}")
            )
        if "spacing" in params:
            gaps = [q[0] - p[0] for p, q in itertools.pairwise(pts)]
            off = max(abs(d - params["spacing"]) for d in gaps)
            gaps_text = ", ".join(f"{d:.3f}" for d in gaps)
            sizes.append(
                (off < self.size_tol, f"gaps {gaps_text} m, want {params['spacing']} ± {self.size_tol}")
            )
        if "center" in params:
            c = (sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts))
            d = g.dist(c, params["center"])
            sizes.append((d < 0.05, f"the ring's centre {g.fmt(c)} is {d:.3f} m from the middle"))
        return Verdict.all_of([(verdict.ok, verdict.reason), *sizes])


class UnseenSuperlative(_Unseen, Superlative):
    phrasings = (
        "the block furthest to the left goes in the {bowl}",
        "take whichever block is nearest to the {ref} and drop it in the {bowl}",
        "drop the block that is most distant from the robot into the {bowl}",
        "the block on the far right should go in the {bowl}",
        "move the block nearest the robot into the {bowl}",
        "of all the blocks, put the one furthest from the {ref} into the {bowl}",
    )
    which = ("leftmost", "closest", "topmost", "rightmost", "bottommost", "farthest")

    @staticmethod
    def _score(which: str, blocks: dict, ref) -> dict[str, float]:
        if which == "bottommost":
            return {n: p[1] for n, p in blocks.items()}
        return Superlative._score(which, blocks, ref)


CORNER_WORDS = {  # the corners described, not named as the API names them
    "top left corner": "far left corner",
    "top right corner": "far right corner",
    "bottom left corner": "left corner nearest the robot",
    "bottom right corner": "right corner nearest the robot",
}


class UnseenMultiTurn(_Unseen, MultiTurn):
    phrasings = (
        "grab the {block} || now lower it into the {bowl}",
        "place the {block} in the {bowl} || actually, put it back where it was",
        "put the {block} in the {bowl} || the {other} should go there too",
        "move the {block} into the {bowl} || now take it out and leave it in the {corner}",
        "drop the {block} into the {bowl} || hmm, never mind, revert that",
        "set the {block} inside the {bowl} || repeat that with the {other}",
    )
    kinds = ("hold_then_place", "undo", "same_again", "move_it", "undo", "same_again")

    def phrase(self, seed: int, **values: str) -> str:
        return super().phrase(seed, **{**values, "corner": CORNER_WORDS[values["corner"]]})


class UnseenQuestion(_Unseen, Question):
    phrasings = (
        "could you count the blocks for me?",
        "what color is the block sitting nearest to the {bowl}?",
        "do you see any {color} blocks?",
        "tell me the number of bowls you can see",
        "which colour is the block farthest to the left?",
        "is a {color} block anywhere on the table?",
    )
    kinds = ("count_blocks", "closest", "exists", "count_bowls", "leftmost_color", "exists")


class UnseenColors(_Unseen, SeenUnseenColors):
    """Pick-and-place and stacking in colours no prompt example mentions."""

    phrasings = (
        "could you put the {block} into the {bowl}?",
        "set the {block} on the {other}",
        "the {block} goes inside the {bowl}",
        "rest the {block} on top of the {other}",
        "kindly move the {block} into the {bowl}",
        "I need the {block} sitting on the {other}",
    )
    counts = (4, 3)

    def palette(self) -> list[str]:
        return list(EXTRA_COLORS)


class UnseenRefusal(_Unseen, Refusal):
    phrasings = (
        "hand me the {missing} block",
        "place the {block} on the {missing} block",
        "if there is a {missing} bowl, put the {block} in it",
        "drop the {block} into the {missing} bowl, thanks",
        "could you move the {missing} block next to the {bowl}?",
        "put the {missing} block and the {block} together in the {bowl}",
    )


LIMIT_WORDS = re.compile(
    r"\b(only|edge|limit|far|reach|enough|left over|remaining|extra|too|beyond|outside|can't|cannot)\b",
    re.IGNORECASE,
)


class Infeasible(_Unseen):
    """Requests that cannot be done in full: do what can be done, then say what could not."""

    name = "infeasible"
    phrasings = (
        "give every block a corner of its own",
        "slide the {block} rightwards by 40 cm",
        "give every block its own bowl",
        "put the {block} in the {bowl} and the {missing} block in the {bowl2}",
        "build a tower out of five blocks",
        "move the {block} half a metre away from the robot",
    )
    kinds = ("corners", "edge", "bowls", "partial", "tower", "edge")

    def generate(self, seed: int) -> Task:
        rng, v = self.rng(seed), self.variant(seed)
        kind = self.kinds[v]
        colors = rng.sample(COLORS, 6)
        values: dict = {}
        params: dict = {"kind": kind}
        if kind == "corners":
            objects: list = [f"{c} block" for c in colors[:5]]
            corners = named_positions(WORKSPACE)
            pos = sample_positions(
                rng,
                objects,
                accept=lambda p: all(
                    math.dist(q, corners[c]) > 0.1 for q in p.values() for c in CORNER_NAMES
                ),
            )
            objects = scene_objects(pos)
        elif kind == "edge":
            block = f"{colors[0]} block"
            names = [block, f"{colors[1]} block", f"{colors[2]} bowl"]
            axis, edge = (0, WORKSPACE.x[1]) if v == 1 else (1, WORKSPACE.y[1])  # rightwards, or away
            pos = sample_positions(
                rng,
                names,
                accept=lambda p: (
                    0.12 < edge - p[block][axis] < 0.25
                    and all(abs(p[n][1 - axis] - p[block][1 - axis]) > 0.09 for n in names[1:])
                ),
            )
            objects = scene_objects(pos)
            values = {"block": block}
            params |= {"block": block, "axis": axis, "edge": edge}
        elif kind == "bowls":
            objects = [f"{c} block" for c in colors[:3]] + [f"{c} bowl" for c in colors[3:5]]
        elif kind == "partial":
            block, bowl, bowl2 = f"{colors[0]} block", f"{colors[1]} bowl", f"{colors[2]} bowl"
            objects = [block, f"{colors[3]} block", bowl, bowl2]
            values = {"block": block, "bowl": bowl, "bowl2": bowl2, "missing": colors[4]}
            params |= {"block": block, "bowl": bowl, "missing": colors[4]}
        else:  # tower
            objects = [f"{c} block" for c in colors[:3]] + [f"{colors[3]} bowl"]
        return self.task(seed, {"objects": objects}, self.phrase(seed, **values), params)

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        start, end, kind = states[0], states[-1], params["kind"]
        text = _said_text(said)
        told = (
            bool(text) and bool(REFUSAL.search(text) or LIMIT_WORDS.search(text)),
            f"said {text!r}: expected a word on what could not be done",
        )
        kept = (not g.fell_off(end), f"{', '.join(g.fell_off(end))} fell off the table")
        if kind == "corners":
            done = _corners_filled(end)
        elif kind == "edge":
            block, axis, edge = params["block"], params["axis"], params["edge"]
            room = edge - g.xy(start, block)[axis]
            gained = g.xy(end, block)[axis] - g.xy(start, block)[axis]
            done = (
                gained > room / 2 and g.on_table(end, block),
                f"the {block} moved {gained:.3f} m of the {room:.3f} m available",
            )
        elif kind == "bowls":
            filled = {
                b: [k for k in g.names(end, "block") if g.in_bowl(end, k, b)] for b in g.names(end, "bowl")
            }
            done = (all(len(v) == 1 for v in filled.values()), f"blocks per bowl: {filled}")
        elif kind == "partial":
            block, bowl = params["block"], params["bowl"]
            inside_ok = g.in_bowl(end, block, bowl)
            only = g.only_moved(states, {block})
            done = (
                inside_ok and only[0],
                f"the {block} is {'' if inside_ok else 'not '}in the {bowl}; {only[1]}",
            )
        else:
            blocks = g.names(end, "block")
            done = (tower_order(end, blocks) is not None, "the three blocks do not form one tower")
        return Verdict.all_of([done, told, kept])


def _corners_filled(state: dict) -> tuple[bool, str]:
    corners = named_positions(WORKSPACE)
    near = CornersSides.tol
    empty = [
        c
        for c in CORNER_NAMES
        if not any(g.dist(g.xy(state, b), corners[c]) < near for b in g.names(state, "block"))
    ]
    return (not empty, f"no block in the {', '.join(empty)}")


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        UnseenPickPlace(),
        UnseenStacking(),
        UnseenSorting(),
        UnseenCornersSides(),
        UnseenRelative(),
        UnseenMoveBy(),
        UnseenArrangement(),
        UnseenSuperlative(),
        UnseenMultiTurn(),
        UnseenQuestion(),
        UnseenColors(),
        UnseenRefusal(),
        Infeasible(),
    )
}
