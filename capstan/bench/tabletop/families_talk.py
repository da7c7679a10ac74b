"""Families about the conversation: multi-turn references and undo, questions answered with
say(), and commands about objects that do not exist (nothing may move, the robot must say so)."""

from __future__ import annotations

import math
import re

from capstan.bench.tabletop import geometry as g
from capstan.bench.tabletop.colors import ALL_COLORS
from capstan.bench.tabletop.layout import sample_positions, scene_objects
from capstan.bench.tabletop.task import Family, Task, Verdict

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
REFUSAL = re.compile(
    r"\b(no|not|isn't|aren't|can't|cannot|couldn't|don't|doesn't|unable|sorry|missing|absent|none|nothing)\b",
    re.IGNORECASE,
)
YES = re.compile(r"\b(yes|yeah|there is a|there's a)\b", re.IGNORECASE)
NO = re.compile(
    r"\b(no|not|isn't|don't|doesn't|there is no|there's no|cannot find|can't find)\b", re.IGNORECASE
)


def _said_text(said: list[str]) -> str:
    return " ".join(str(s) for s in said).strip()


def _nothing_moved(states: list[dict]) -> tuple[bool, str]:
    moved = g.moved(states[0], states[-1])
    return (not moved, f"moved {', '.join(moved)}")


class MultiTurn(Family):
    """Two commands in one session; the second refers back to the first."""

    name = "multi_turn"
    phrasings = (
        "pick up the {block} || now put it in the {bowl}",
        "put the {block} in the {bowl} || undo that",
        "put the {block} in the {bowl} || now do the same with the {other}",
        "put the {block} in the {bowl} || now move it to the {corner}",
    )
    kinds = ("hold_then_place", "undo", "same_again", "move_it")

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        kind = self.kinds[seed % len(self.kinds)]
        colors = rng.sample(list(ALL_COLORS), 6)
        block, other, bowl, bowl2 = (
            f"{colors[0]} block",
            f"{colors[1]} block",
            f"{colors[2]} bowl",
            f"{colors[3]} bowl",
        )
        distractors = [f"{colors[4]} block", f"{colors[5]} bowl"]
        corner = rng.choice(
            ("top left corner", "top right corner", "bottom left corner", "bottom right corner")
        )
        text = self.phrase(seed, block=block, bowl=bowl, other=other, corner=corner)
        params = {"kind": kind, "block": block, "bowl": bowl, "other": other, "corner": corner}
        objs = [block, other, bowl, bowl2, *distractors]
        if kind == "move_it":  # keep the corner free
            goal = {
                "top left corner": (-0.25, 0.7),
                "top right corner": (0.25, 0.7),
                "bottom left corner": (-0.25, 0.3),
                "bottom right corner": (0.25, 0.3),
            }[corner]
            pos = sample_positions(
                rng, objs, accept=lambda p: all(math.dist(q, goal) > 0.12 for q in p.values())
            )
            objs = scene_objects(pos)
        return self.task(seed, {"objects": objs}, text.split(" || "), params)

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        if len(states) < 3:
            return Verdict(False, f"only {len(states) - 1} of 2 commands ran")
        start, mid, end = states[0], states[1], states[2]
        block, bowl, kind = params["block"], params["bowl"], params["kind"]
        if kind == "hold_then_place":
            return Verdict.all_of(
                [
                    (g.in_bowl(end, block, bowl), f"{block} is not in the {bowl} after the second command"),
                    g.only_moved(states, {block}),
                ]
            )
        if kind == "undo":
            back = g.dist(g.xy(end, block), g.xy(start, block))
            return Verdict.all_of(
                [
                    (g.in_bowl(mid, block, bowl), f"the first command did not put the {block} in the {bowl}"),
                    (
                        back < 0.04 and not g.in_bowl(end, block, bowl),
                        f"after 'undo' the {block} is {back:.3f} m from where it started (want < 0.04)",
                    ),
                ]
            )
        if kind == "same_again":
            other = params["other"]
            return Verdict.all_of(
                [
                    (g.in_bowl(end, block, bowl), f"{block} is not in the {bowl}"),
                    (g.in_bowl(end, other, bowl), f"{other} is not in the {bowl} after 'do the same'"),
                    g.only_moved(states, {block, other}),
                ]
            )
        goal = end["named_positions"][params["corner"]]
        d = g.dist(g.xy(end, block), goal)
        return Verdict.all_of(
            [
                (g.in_bowl(mid, block, bowl), f"the first command did not put the {block} in the {bowl}"),
                (d < 0.06, f"'it' ({block}) is {d:.3f} m from the {params['corner']} (tolerance 0.06)"),
                g.only_moved(states, {block}),
            ]
        )


class Question(Family):
    """Questions about the scene, answered with say(); nothing may move."""

    name = "question"
    phrasings = (
        "how many blocks are there?",
        "which block is closest to the {bowl}?",
        "is there a {color} block on the table?",
        "how many bowls are on the table?",
        "what color is the leftmost block?",
    )
    kinds = ("count_blocks", "closest", "exists", "count_bowls", "leftmost_color")

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        kind = self.kinds[seed % len(self.kinds)]
        n_blocks, n_bowls = rng.choice((2, 3, 4)), rng.choice((1, 2, 3))
        colors = list(ALL_COLORS)
        blocks = [f"{c} block" for c in rng.sample(colors, n_blocks)]
        bowls = [f"{c} bowl" for c in rng.sample(colors, n_bowls)]
        params: dict = {"kind": kind}
        if kind == "count_blocks":
            params["answer"] = n_blocks
        elif kind == "count_bowls":
            params["answer"] = n_bowls
        elif kind == "exists":
            present = (seed // len(self.kinds)) % 2 == 0
            absent = [c for c in colors if f"{c} block" not in blocks]
            params["color"] = blocks[0].split()[0] if present else rng.choice(absent)
            params["answer"] = present
        pos = sample_positions(rng, blocks + bowls, accept=lambda p: self._clear(kind, p, blocks, bowls))
        if kind == "closest":
            params["bowl"] = bowls[0]
            params["answer"] = min(blocks, key=lambda b: math.dist(pos[b], pos[bowls[0]])).split()[0]
        elif kind == "leftmost_color":
            params["answer"] = min(blocks, key=lambda b: pos[b][0]).split()[0]
        text = self.phrase(seed, bowl=bowls[0], color=params.get("color", ""))
        return self.task(seed, {"objects": scene_objects(pos)}, text, params)

    @staticmethod
    def _clear(kind: str, pos, blocks: list[str], bowls: list[str]) -> bool:
        """The answer is unambiguous: the best block beats the runner-up by 5 cm."""
        if kind == "closest":
            d = sorted(math.dist(pos[b], pos[bowls[0]]) for b in blocks)
        elif kind == "leftmost_color":
            d = sorted(pos[b][0] for b in blocks)
        else:
            return True
        return d[1] - d[0] > 0.05

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        text = _said_text(said)
        kind, answer = params["kind"], params["answer"]
        if not text:
            answered = (False, "nothing was said")
        elif kind in ("count_blocks", "count_bowls"):
            nums = [int(m) for m in re.findall(r"\b\d+\b", text)]
            nums += [
                NUMBER_WORDS.index(w.lower())
                for w in re.findall(r"\b[a-zA-Z]+\b", text)
                if w.lower() in NUMBER_WORDS
            ]
            answered = (answer in nums, f"said {text!r}; the answer is {answer}")
        elif kind == "exists":
            yes, no = bool(YES.search(text)), bool(NO.search(text))
            ok = (yes and not no) if answer else (no and not yes)
            answered = (ok, f"said {text!r}; the answer is {'yes' if answer else 'no'}")
        else:  # a color: the first block color mentioned must be the answer
            # the bowl the question is about is named back in a full answer, not given as one
            answer_text = text.lower().replace(params.get("bowl") or "\0", " ")
            mentioned = [c for c in re.findall(r"[a-z]+", answer_text) if c in ALL_COLORS]
            answered = (bool(mentioned) and mentioned[0] == answer, f"said {text!r}; the answer is {answer}")
        return Verdict.all_of([answered, _nothing_moved(states)])


class Refusal(Family):
    """Commands about objects that do not exist: nothing moves and the robot says why."""

    name = "refusal"
    phrasings = (
        "put the {missing} block in the {bowl}",
        "pick up the {missing} block",
        "stack the {missing} block on the {block}",
        "put the {block} in the {missing} bowl",
    )

    def generate(self, seed: int) -> Task:
        rng = self.rng(seed)
        colors = rng.sample(list(ALL_COLORS), 5)
        missing = colors[4]
        blocks, bowls = [f"{c} block" for c in colors[:2]], [f"{c} bowl" for c in colors[2:4]]
        text = self.phrase(seed, missing=missing, bowl=bowls[0], block=blocks[0])
        return self.task(seed, {"objects": blocks + bowls}, text, {"missing": missing})

    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict:
        text = _said_text(said)
        told = bool(REFUSAL.search(text)) or params["missing"] in text.lower()
        return Verdict.all_of(
            [
                _nothing_moved(states),
                (
                    told,
                    f"said {text!r}: expected a refusal mentioning the missing {params['missing']} object",
                ),
            ]
        )
