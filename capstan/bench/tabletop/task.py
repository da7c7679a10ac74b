"""Tabletop tasks: a family turns a seed into a `Task` (scene spec, command texts, checker
parameters) and judges the outcome from the scene states and the said lines.

`states[0]` is the scene before the first command and `states[i]` the scene after command i, so a
multi-turn checker can look at every step (e.g. "undo that" must undo something that happened).
"""

from __future__ import annotations

import abc
import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Task:
    id: str
    family: str
    seed: int
    scene: dict
    commands: tuple[str, ...]
    params: dict = field(default_factory=dict)
    split: str = "seen"

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "family": self.family,
            "seed": self.seed,
            "scene": self.scene,
            "commands": list(self.commands),
            "params": self.params,
            "split": self.split,
        }

    @classmethod
    def from_json(cls, d: dict) -> Task:
        return cls(
            d["id"],
            d["family"],
            d["seed"],
            d["scene"],
            tuple(d["commands"]),
            d.get("params", {}),
            d.get("split", "seen"),
        )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str

    @classmethod
    def all_of(cls, checks: list[tuple[bool, str]]) -> Verdict:
        """Pass when every (ok, why-it-failed) holds; the reason lists the failures."""
        failed = [why for ok, why in checks if not ok]
        return cls(not failed, "; ".join(failed) if failed else "ok")


class Family(abc.ABC):
    """One kind of task. `generate` must be deterministic in `seed`."""

    name: str = ""
    split: str = "seen"  # seen: the regression templates; unseen: see unseen.py
    phrasings: tuple[str, ...] = ()

    @abc.abstractmethod
    def generate(self, seed: int) -> Task: ...

    @abc.abstractmethod
    def check(self, params: dict, states: list[dict], said: list[str]) -> Verdict: ...

    # helpers for subclasses
    def rng(self, seed: int) -> random.Random:
        return random.Random(f"capstan-task-{self.name}-{seed}")

    def phrase(self, seed: int, **values: str) -> str:
        return self.phrasings[seed % len(self.phrasings)].format(**values)

    def task(self, seed: int, scene: dict, commands, params: dict) -> Task:
        cmds = (commands,) if isinstance(commands, str) else tuple(commands)
        task_id = f"{self.name}/{seed}" if self.split == "seen" else f"{self.split}/{self.name}/{seed}"
        return Task(task_id, self.name, seed, {**scene, "seed": seed}, cmds, params, self.split)
