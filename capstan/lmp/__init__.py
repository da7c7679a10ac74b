"""Language model programs: prompt rendering, code extraction, hierarchical function generation,
skills, self-repair and multi-turn context.

    from capstan.lmp import Engine, Conversation
    engine = Engine(llm, sandbox, max_attempts=3)
    outcome = engine.run_command("stack the blocks", api, Conversation(), on_event, cancel)

Public face (imported lazily so `import lmp` stays cheap).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "ApprovalGate": "capstan.lmp.approval",
    "Decision": "capstan.lmp.approval",
    "Attempt": "capstan.lmp.engine",
    "CommandOutcome": "capstan.lmp.engine",
    "Conversation": "capstan.lmp.conversation",
    "Engine": "capstan.lmp.engine",
    "FunctionGenerator": "capstan.lmp.hierarchy",
    "GeneratedFunction": "capstan.lmp.hierarchy",
    "PromptError": "capstan.lmp.prompt",
    "PromptSpec": "capstan.lmp.prompt",
    "SkillLibrary": "capstan.lmp.skills",
    "Turn": "capstan.lmp.conversation",
    "extract_code": "capstan.lmp.extract",
    "load_prompt": "capstan.lmp.prompt",
    "LLMCall": "capstan.lmp.calls",
    "PolicyExecutor": "capstan.lmp.executor",
}

__all__ = [
    "ApprovalGate",
    "Attempt",
    "CommandOutcome",
    "Conversation",
    "Decision",
    "Engine",
    "FunctionGenerator",
    "GeneratedFunction",
    "LLMCall",
    "PolicyExecutor",
    "PromptError",
    "PromptSpec",
    "SkillLibrary",
    "Turn",
    "extract_code",
    "load_prompt",
]


if TYPE_CHECKING:  # pragma: no cover - what type checkers and editors see
    from capstan.lmp.approval import ApprovalGate, Decision
    from capstan.lmp.calls import LLMCall
    from capstan.lmp.conversation import Conversation, Turn
    from capstan.lmp.engine import Attempt, CommandOutcome, Engine
    from capstan.lmp.executor import PolicyExecutor
    from capstan.lmp.extract import extract_code
    from capstan.lmp.hierarchy import FunctionGenerator, GeneratedFunction
    from capstan.lmp.prompt import PromptError, PromptSpec, load_prompt
    from capstan.lmp.skills import SkillLibrary


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lmp' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
