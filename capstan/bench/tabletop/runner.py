"""Run one tabletop task through the full stack and judge it.

sim.World from the task's scene spec -> primitives.PolicyAPI (ground-truth perception) ->
lmp.Engine.run_command for each command in one Conversation (code runs in sandbox.Sandbox) ->
the family's checker over the scene states and the said lines -> a failure category.

Failure categories (when the checker says no):
    timeout          a command hit the task's time limit or the sandbox's
    code_error       the final program did not run: syntax/static check/violation/exception, or a
                     primitive refused its arguments (unknown object, out of workspace, ...)
    physics_failure  the grasp failed, the arm could not reach, or an object fell off the table
    wrong_program    the program ran but the world (or the answer) is not what was asked
    harness_error    the model or the harness failed (e.g. a cassette miss): not the policy's fault
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from capstan.bench.tabletop import Task, family_of
from capstan.bench.tabletop import geometry as g
from capstan.lmp.nested import NESTED

if TYPE_CHECKING:
    from capstan.lmp import Attempt

PHYSICS_ERRORS = {"GraspError", "UnreachableError"}
CODE_ERROR_KINDS = {"syntax", "violation", "policy", "check", "no_code", "crash", "memory", "primitive"}
CATEGORIES = ("timeout", "code_error", "physics_failure", "wrong_program", "harness_error")


@dataclass
class RunConfig:
    llm_overrides: dict
    max_attempts: int = 3
    command_timeout_s: float = 240.0  # per command: generation + execution
    exec_timeout_s: float = 60.0  # per program run in the sandbox
    dry_run: bool = True  # rehearse programs on a world snapshot first, as the service does
    candidates: int = 3  # programs per command when more than the first is sampled
    sample_compositional: bool = False  # True: more candidates for compositional commands too


class TaskContext:
    """What a worker process builds once: the model and a sandbox."""

    def __init__(self, config: dict):
        from capstan import llm
        from capstan.bench.options import worker_env
        from capstan.service.assembly import build_sandbox

        self.config = RunConfig(**config["run"])
        self.llm = llm.from_config(worker_env(self.config.llm_overrides))
        self.sandbox = build_sandbox(1)

    def new_engine(self):
        """A fresh engine, so each task starts like a new session: an empty skill library, with
        nothing an earlier task generated offered to its prompts."""
        from capstan.service.assembly import EngineSettings, build_engine

        c = self.config
        settings = EngineSettings(
            timeout_s=c.exec_timeout_s,
            max_attempts=c.max_attempts,
            dry_run=c.dry_run,
            candidates=c.candidates,
            sample_compositional=c.sample_compositional,
        )
        return build_engine(self.llm, self.sandbox, settings)


def setup(config: dict) -> TaskContext:
    return TaskContext(config)


def run_one(ctx: TaskContext, payload: dict) -> dict:
    return run_task(ctx.new_engine(), Task.from_json(payload["task"]), ctx.config.command_timeout_s)


def run_task(engine, task: Task, command_timeout_s: float = 240.0) -> dict:
    """Run `task` with `engine` on a fresh world; returns the result row (plain JSON)."""
    from capstan.lmp import Conversation
    from capstan.service.assembly import build_policy_api, build_sim

    primitive_errors: list[str] = []

    def on_event(kind: str, payload: dict) -> None:
        if kind == "primitive_call" and payload.get("error"):
            primitive_errors.append(payload["error"].get("type", ""))

    world = build_sim(task.scene)
    try:
        api = build_policy_api(world, "truth", on_event)
        states = [world.state()]
        conversation = Conversation()
        turns, timed_out = [], False
        for text in task.commands:
            t0 = time.monotonic()
            outcome, hit_limit = _run_command(engine, text, api, conversation, command_timeout_s)
            timed_out |= hit_limit
            turns.append({**_turn_row(text, outcome, hit_limit), "wall_s": round(time.monotonic() - t0, 3)})
            states.append(world.state())
        said = list(api.said)
    finally:
        world.close()
    verdict = family_of(task).check(task.params, states, said)
    category = None if verdict.ok else categorize(turns, states, primitive_errors, timed_out)
    return {
        "task_id": task.id,
        "family": task.family,
        "split": task.split,
        "commands": list(task.commands),
        "success": verdict.ok,
        "reason": verdict.reason,
        "category": category,
        "said": said,
        "turns": turns,
        "primitive_errors": primitive_errors,
        "final_state": {n: [round(v, 4) for v in o["position"]] for n, o in states[-1]["objects"].items()},
    }


def _run_command(engine, text: str, api, conversation, limit_s: float):
    cancel = threading.Event()
    timer = threading.Timer(limit_s, cancel.set)
    timer.daemon = True
    timer.start()
    t0 = time.monotonic()
    try:
        outcome = engine.run_command(text, api, conversation, None, cancel)
    finally:
        timer.cancel()
    hit_limit = cancel.is_set() and outcome.status == "cancelled"
    return outcome, hit_limit or (time.monotonic() - t0 > limit_s)


def _turn_row(text: str, outcome, hit_limit: bool) -> dict:
    return {
        "command": text,
        "status": str(outcome.status),
        "error": outcome.error.to_dict() if outcome.error else None,
        "code": outcome.code,
        "attempts": len(outcome.attempts),
        "candidates": outcome.candidates,  # programs rehearsed in dry runs
        # per attempt with dry runs: which candidate ran (0 is the greedy one; None: all refused)
        "chosen": [a.chosen for a in outcome.attempts if a.candidates is not None],
        # the kind of error the first program hit, if any: what a repair had to fix
        "first_error_kind": _first_error_kind(outcome.attempts),
        "llm_calls": len(outcome.llm_calls),
        "helper_calls": sum(c.get("lmp") == "fgen" for c in outcome.llm_calls),  # one per helper written
        "nested_calls": sum(c.get("lmp") in NESTED for c in outcome.llm_calls),
        "completion_tokens": sum(int(c.get("completion_tokens") or 0) for c in outcome.llm_calls),
        "model": next((c.get("model") for c in outcome.llm_calls if c.get("model")), None),
        "hit_time_limit": hit_limit,
    }


def _first_error_kind(attempts: list[Attempt]) -> str | None:
    if not attempts or attempts[0].error is None:
        return None
    return str(attempts[0].error.kind)


def categorize(turns: list[dict], states: list[dict], primitive_errors: list[str], timed_out: bool) -> str:
    """Why a task failed (see the module docstring)."""
    errors = [t["error"] for t in turns if t["status"] != "succeeded" and t["error"]]
    kinds = [e.get("kind") for e in errors]
    if timed_out or "timeout" in kinds or "cancelled" in kinds:
        return "timeout"
    if "llm" in kinds:
        return "harness_error"
    last_primitive = primitive_errors[-1] if primitive_errors else None
    # a GraspError the program caused
    misuse = any("already holding" in (e.get("message") or "") for e in errors)
    if any(k == "primitive" for k in kinds) and last_primitive in PHYSICS_ERRORS and not misuse:
        return "physics_failure"
    if any(k in CODE_ERROR_KINDS for k in kinds):
        return "code_error"
    if g.fell_off(states[-1]) or any(e in PHYSICS_ERRORS for e in primitive_errors):
        return "physics_failure"
    return "wrong_program"
