"""Multi-turn memory: earlier commands, the code that ran, and world snapshots for `undo()`.

The last `max_turns` turns go into later prompts so "now put it in the blue bowl" can resolve
"it". Each turn also keeps the snapshot of the world taken before it ran (when the backend can
snapshot), so `undo()` can restore the world to before the most recent not-yet-undone turn.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from capstan.primitives.outcome import RunStatus


@dataclass
class Turn:
    command: str
    code: str
    status: RunStatus
    said: list[str] = field(default_factory=list)
    snapshot: Any = None  # the world before this turn, when the backend supports snapshots
    undone: bool = False
    is_undo: bool = False


class Conversation:
    def __init__(self, max_turns: int = 6, max_code_chars: int = 1500):
        self.max_turns = max_turns
        self.max_code_chars = max_code_chars
        self.turns: list[Turn] = []
        self._lock = threading.Lock()

    def add(self, turn: Turn) -> None:
        with self._lock:
            self.turns.append(turn)
            del self.turns[: -self.max_turns]

    def history(self) -> list[dict[str, str]]:
        """Earlier turns as {command, code} for prompts (failed ones say so in a comment)."""
        out = []
        for t in self.turns:
            code = (
                t.code if len(t.code) <= self.max_code_chars else t.code[: self.max_code_chars] + "\n# ...\n"
            )
            if t.status != RunStatus.SUCCEEDED:
                code = f"# (this command {t.status})\n" + code
            if t.undone:
                code += "\n# (undone later)"
            out.append({"command": t.command, "code": code})
        return out

    def undo_target(self) -> Turn | None:
        """The most recent turn that changed the world and is not undone yet."""
        with self._lock:
            for t in reversed(self.turns):
                if not t.undone and not t.is_undo:
                    return t
        return None

    def clear(self) -> None:
        with self._lock:
            self.turns.clear()
