"""Run a task on the real stack with a scripted LLM that answers each command with our program."""

from __future__ import annotations

from capstan.bench.tabletop import Task
from capstan.bench.tabletop.runner import run_task


def run_scripted(sandbox, task: Task, programs: list[str], exec_timeout_s: float = 60) -> dict:
    from capstan.llm.scripted import ScriptedProvider
    from capstan.lmp import Engine

    engine = Engine(ScriptedProvider(list(programs)), sandbox, max_attempts=1, timeout_s=exec_timeout_s)
    return run_task(engine, task, command_timeout_s=120)


def fill(programs: list[str], task: Task) -> list[str]:
    return [prog.format(p=task.params) for prog in programs]


def assert_judged_right(
    sandbox, task: Task, good: list[str], bad: list[str], categories=("wrong_program", "physics_failure")
) -> None:
    """The task's checker accepts the outcome of `good` and rejects that of `bad`, whose failure
    falls in one of `categories`."""
    ok = run_scripted(sandbox, task, fill(good, task))
    assert ok["success"], (task.commands, ok["reason"], [turn["error"] for turn in ok["turns"]])
    assert ok["category"] is None
    wrong = run_scripted(sandbox, task, fill(bad, task))
    assert not wrong["success"], (task.commands, wrong["reason"])
    assert wrong["category"] in categories, wrong
