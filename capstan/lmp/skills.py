"""Per-session library of generated functions that worked, reused by later commands.

A function enters the library only after a program that used it ran successfully. Later prompts
list the library's signatures, and a call to a library function is resolved from the library
without asking the model again. Export/load as JSON.
"""

from __future__ import annotations

import ast
import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Skill:
    name: str
    code: str
    signature: str
    doc: str = ""
    uses: int = 0


class SkillError(ValueError):
    """Skill code that is not a single function definition of the given name."""


def _describe(name: str, code: str) -> tuple[str, str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise SkillError(f"skill {name!r} does not parse: {exc.msg} (line {exc.lineno})") from exc
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not fns:
        raise SkillError(f"skill code does not define a function named {name!r}")
    if len(fns) > 1:  # Python keeps the last, and what is checked and described must be what runs
        raise SkillError(f"skill code defines {name!r} more than once")
    fn = fns[0]
    sig = f"{name}({ast.unparse(fn.args)})"
    doc = (ast.get_docstring(fn) or "").strip().split("\n")[0]
    return sig, doc


class SkillLibrary:
    def __init__(self, max_skills: int = 64):
        self.max_skills = max_skills
        self._skills: dict[str, Skill] = {}
        self._lock = threading.Lock()

    def __contains__(self, name: str) -> bool:
        return name in self._skills

    def __len__(self) -> int:
        return len(self._skills)

    def names(self) -> list[str]:
        return sorted(self._skills)

    def add(self, name: str, code: str) -> Skill:
        sig, doc = _describe(name, code)
        with self._lock:
            old = self._skills.get(name)
            skill = Skill(name, code.strip("\n") + "\n", sig, doc, old.uses if old else 0)
            self._skills[name] = skill
            while len(self._skills) > self.max_skills:  # drop the least used
                victim = min(self._skills.values(), key=lambda s: s.uses)
                del self._skills[victim.name]
        return skill

    def all(self) -> list[Skill]:
        with self._lock:
            return [Skill(**asdict(s)) for s in self._skills.values()]

    def remove(self, name: str) -> bool:
        with self._lock:
            return self._skills.pop(name, None) is not None

    def get(self, name: str) -> str | None:
        with self._lock:
            skill = self._skills.get(name)
            if skill is None:
                return None
            skill.uses += 1
            return skill.code

    def signatures(self) -> list[str]:
        with self._lock:
            return [s.signature + (f" - {s.doc}" if s.doc else "") for s in self._skills.values()]

    def to_json(self) -> str:
        with self._lock:
            return json.dumps({"version": 1, "skills": [asdict(s) for s in self._skills.values()]}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> SkillLibrary:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise SkillError("not a skill library export (expected {'version': 1, 'skills': [...]})")
        lib = cls()
        for item in data["skills"]:
            lib.add(item["name"], item["code"]).uses = int(item.get("uses", 0))
        return lib

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> SkillLibrary:
        return cls.from_json(Path(path).read_text())
