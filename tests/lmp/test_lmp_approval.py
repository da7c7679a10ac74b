"""The engine asks its ApprovalGate right before a program moves the robot: a refusal means the
program never runs and no repair follows; an approval shows the gate the program and its dry runs."""

from __future__ import annotations

import numpy as np

from capstan.lmp import Decision, Engine
from capstan.primitives.outcome import ErrorKind
from capstan.primitives.rehearsal import SnapshotRehearsal

PUT = "```python\nput_first_on_second('red block', 'green bowl')\n```"


class Answering:
    """An ApprovalGate that answers every request the same way and keeps what it was shown."""

    def __init__(self, approved: bool, by: str = "operator"):
        self.approved, self.by = approved, by
        self.asked: list[tuple[int, str, list[dict]]] = []

    def decide(self, attempt: int, code: str, dry_runs: list[dict]) -> Decision:
        self.asked.append((attempt, code, dry_runs))
        return Decision(self.approved, self.by, reason="checked by hand")


def positions(world) -> dict:
    return {n: o["position"] for n, o in world.state()["objects"].items()}


def test_a_rejected_program_never_runs_and_is_not_repaired(world, api, sandbox, scripted):
    before, ee = positions(world), world.ee_position()
    gate = Answering(approved=False, by="alice")
    llm = scripted(PUT, PUT, PUT)  # replies for repairs that must not be asked for
    events: list[tuple[str, dict]] = []
    out = Engine(llm, sandbox, max_attempts=3).run_command(
        "red block in the green bowl", api, on_event=lambda k, p: events.append((k, p)), approval=gate
    )
    assert out.status == "failed" and out.error is not None and out.error.kind == ErrorKind.REJECTED
    assert "alice" in out.error.message and "checked by hand" in out.error.message
    assert len(llm.requests) == 1 and len(out.attempts) == 1
    assert [k for k, _ in events] == ["llm_call", "code", "approval", "decision", "attempt"]
    assert events[3][1]["by"] == "alice" and events[3][1]["approved"] is False
    assert gate.asked == [(1, "put_first_on_second('red block', 'green bowl')\n", [])]
    assert positions(world) == before and np.allclose(world.ee_position(), ee)
    assert not [e for e in api.test_events if e[0] == "primitive_call"]


def test_an_approved_program_runs_after_the_gate_saw_its_dry_run(world, api, sandbox, scripted):
    gate = Answering(approved=True)
    engine = Engine(scripted(PUT), sandbox, rehearsal=SnapshotRehearsal())
    out = engine.run_command("red block in the green bowl", api, approval=gate)
    assert out.status == "succeeded", out.error
    [(attempt, code, dry_runs)] = gate.asked
    assert attempt == 1 and "put_first_on_second" in code
    assert [d["rejected"] for d in dry_runs] == [None] and dry_runs[0]["code"] == code
    red, bowl = positions(world)["red block"], positions(world)["green bowl"]
    assert np.linalg.norm(np.subtract(red[:2], bowl[:2])) < 0.05


def test_run_program_asks_the_gate_too(world, api, sandbox, scripted):
    gate = Answering(approved=False)
    out = Engine(scripted(), sandbox).run_program("say('hi')", api, approval=gate)
    assert out.error is not None and out.error.kind == ErrorKind.REJECTED and out.said == []
    assert len(gate.asked) == 1
