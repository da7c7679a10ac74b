"""Dry runs and candidate selection: the engine with a snapshot rehearsal on the real sim world,
the real sandbox and a scripted LLM."""

from __future__ import annotations

import numpy as np
import pytest

from capstan.lmp import Conversation, Engine
from capstan.lmp.rehearsal import DryRun, choose
from capstan.primitives.rehearsal import SnapshotRehearsal


def xy(world, name):
    return np.array(world.state()["objects"][name]["position"][:2])


def near(world, a, b, tol=0.05):
    return float(np.linalg.norm(xy(world, a) - xy(world, b))) < tol


def engine(llm, sandbox, **kw):
    return Engine(llm, sandbox, rehearsal=SnapshotRehearsal(), **kw)


def run(eng, api, text, conv=None):
    events: list[tuple[str, dict]] = []
    out = eng.run_command(text, api, conv, on_event=lambda k, p: events.append((k, p)))
    return out, events


PUT = "put_first_on_second('red block', 'green bowl')"


def test_a_one_line_pick_place_costs_one_dry_run_and_no_extra_llm_call(world, api, sandbox, scripted):
    llm = scripted(PUT)
    out, events = run(engine(llm, sandbox), api, "red one into the green bowl")
    assert out.status == "succeeded" and near(world, "red block", "green bowl")
    assert len(llm.requests) == 1 and out.candidates == 1
    kinds = [k for k, _ in events]
    assert kinds.count("candidate") == 1 and "selection" not in kinds
    cand = dict(events)["candidate"]
    assert cand["rejected"] is None and cand["motions"] == 1 and cand["source"] == "greedy"
    # the real run, not the dry run, is what the event sink saw: one put, after the candidate event
    puts = [
        i
        for i, (k, p) in enumerate(api.test_events)
        if k == "primitive_call" and p["name"] == "put_first_on_second"
    ]
    assert len(puts) == 1


def test_the_dry_run_leaves_the_world_and_said_lines_as_they_were(world, api, sandbox):
    before = world.state()["objects"]
    said = len(api.said)
    events_before = len(api.test_events)

    def program():
        api.functions()["put_first_on_second"]("red block", "green bowl")
        api.functions()["say"]("done")

    rehearsed = SnapshotRehearsal().rehearse(api, program)
    after = world.state()["objects"]
    assert all(np.allclose(before[n]["position"], after[n]["position"], atol=1e-6) for n in before)
    assert rehearsed.said == ["done"] and len(api.said) == said
    assert [c["name"] for c in rehearsed.calls] == ["put_first_on_second", "say"]
    assert len(api.test_events) == events_before  # nothing reached the run's event sink
    moved = np.linalg.norm(
        np.subtract(
            rehearsed.after["objects"]["red block"]["position"][:2],
            rehearsed.before["objects"]["red block"]["position"][:2],
        )
    )
    assert moved > 0.05


def test_a_program_that_does_nothing_is_refused_and_repaired(world, api, sandbox, scripted):
    nothing = "objects = ['red block']\nblocks = ['red block']\nbowls = []\n"
    llm = scripted(nothing, "x = 1", "y = 2", PUT)
    out, _ = run(engine(llm, sandbox, candidates=3), api, "tidy the red block away into the green bowl")
    assert out.status == "succeeded" and near(world, "red block", "green bowl")
    first = out.attempts[0]
    assert not first.ok and first.error.kind == "no_effect"
    assert [c.rejected for c in first.candidates] == ["no_effect", "no_effect", "no_effect"]
    # two sampled alternatives, seeded so a cassette can replay them, then the repair
    assert [(r.temperature, r.seed) for r in llm.requests[:3]] == [(0.0, None), (0.7, 1), (0.7, 2)]
    assert "changed nothing and said nothing" in llm.requests[3].messages[-1].content


def test_a_question_answered_with_say_is_not_refused(world, api, sandbox, scripted):
    llm = scripted("say(f'there are {len(blocks)} blocks')")
    out, _ = run(engine(llm, sandbox), api, "how many blocks?")
    assert out.status == "succeeded" and out.said == ["there are 3 blocks"]
    assert len(llm.requests) == 1


def test_a_raising_first_program_is_replaced_by_a_sampled_survivor_without_a_repair(
    world, api, sandbox, scripted
):
    start = xy(world, "blue block")
    bad = "put_first_on_second('blue block', 'green bowl')\nput_first_on_second('red block', [9.0, 9.0])"
    llm = scripted(bad, PUT, PUT)
    out, events = run(engine(llm, sandbox), api, "the red block goes in the green bowl")
    assert out.status == "succeeded" and len(out.attempts) == 1 and out.attempts[0].chosen == 1
    assert near(world, "red block", "green bowl")
    assert np.allclose(xy(world, "blue block"), start, atol=0.01)  # the refused program never ran for real
    cands = out.attempts[0].candidates
    assert cands[0].rejected == "primitive" and "blue block moved" in cands[0].moved[0]
    assert cands[2].seed == 2 and cands[2].rejected is None
    selection = dict(events)["selection"]
    assert selection == {"attempt": 1, "chosen": 1, "agreeing": 1, "candidates": 3}
    assert out.code == PUT + "\n"


def test_a_compositional_command_runs_the_scene_most_candidates_agree_on(world, api, sandbox, scripted):
    wrong = "for b in blocks:\n    put_first_on_second(b, 'blue bowl')"
    right = "for b in blocks:\n    put_first_on_second(b, 'green bowl')"
    right_again = "for block in blocks:\n    put_first_on_second(block, 'green bowl')"
    llm = scripted(wrong, right, right_again)
    out, _ = run(engine(llm, sandbox, sample_compositional=True), api, "gather every block in the green bowl")
    assert out.status == "succeeded" and out.attempts[0].chosen == 1
    assert all(near(world, b, "green bowl", 0.08) for b in ("red block", "blue block", "yellow block"))
    assert out.candidates == 3


def test_by_default_a_compositional_command_whose_program_passes_its_dry_run_gets_no_more_candidates(
    world, api, sandbox, scripted
):
    loop = "for b in blocks:\n    put_first_on_second(b, 'green bowl')"
    llm = scripted(loop)
    out, _ = run(engine(llm, sandbox), api, "gather every block in the green bowl")
    assert out.status == "succeeded" and out.candidates == 1 and len(llm.requests) == 1


def test_without_a_rehearsal_nothing_changes(world, api, sandbox, scripted):
    llm = scripted("x = 1")
    out, events = run(Engine(llm, sandbox), api, "do nothing at all")
    assert out.status == "succeeded" and out.candidates == 0
    assert "candidate" not in [k for k, _ in events]


def test_undo_in_a_dry_run_does_not_spend_the_earlier_turn(world, api, sandbox, scripted):
    llm = scripted(PUT, "undo()")
    eng = engine(llm, sandbox)
    conv = Conversation()
    start = xy(world, "red block")
    assert run(eng, api, "red block in the green bowl", conv)[0].status == "succeeded"
    out, _ = run(eng, api, "take that back", conv)
    assert out.status == "succeeded" and np.allclose(xy(world, "red block"), start, atol=0.01)
    assert conv.turns[0].undone and conv.turns[1].is_undo


def test_choose_prefers_agreement_then_the_earliest():
    a = DryRun(0, "greedy", "a", final={"x": [0.0, 0.0, 0.0]})
    b = DryRun(1, "sampled", "b", final={"x": [0.1, 0.0, 0.0]})
    c = DryRun(2, "sampled", "c", final={"x": [0.105, 0.0, 0.0]})
    assert choose([a, b, c]) == (b, 1)
    assert choose([a, b]) == (a, 0)
    refused = DryRun(0, "greedy", "a", rejected="no_effect")
    assert choose([refused]) == (None, 0)


def assert_unmoved(world, before):
    after = world.state()
    for name, o in before["objects"].items():
        assert np.allclose(after["objects"][name]["position"], o["position"], atol=1e-6), name
    assert np.allclose(world.ee_position(), before["gripper"]["position"], atol=1e-6)


class _NeverFits:
    """A rehearsal that fits no backend (as a twin fits none that snapshots)."""

    def can_rehearse(self, api):
        return False

    def rehearse(self, api, run):
        raise AssertionError("not called when it does not fit")


@pytest.mark.parametrize("rehearsal", [None, _NeverFits()], ids=["none", "none-fits"])
def test_where_a_rehearsal_is_required_and_none_can_happen_nothing_runs(
    world, api, sandbox, scripted, rehearsal
):
    llm = scripted(PUT)
    eng = Engine(llm, sandbox, rehearsal=rehearsal, require_rehearsal=True)
    before = world.state()
    out = eng.run_program(PUT, api)  # hand-written code too
    assert out.status == "failed" and out.error.kind == "not_rehearsed"
    assert "only after a passing dry run" in out.error.message
    out, _ = run(eng, api, "red one into the green bowl")
    assert out.status == "failed" and out.error.kind == "not_rehearsed"
    assert llm.requests == []  # refused before the model was even asked
    assert_unmoved(world, before)


def test_a_required_rehearsal_covers_hand_written_programs(world, api, sandbox, scripted):
    eng = Engine(scripted(), sandbox, rehearsal=SnapshotRehearsal(), require_rehearsal=True)
    before = world.state()
    events: list[tuple[str, dict]] = []
    program = "steps = [0.2]\nmove_gripper_to([0.0, 0.5, 0.2])\nmove_gripper_to([0.0, 0.5, steps[3]])"
    out = eng.run_program(program, api, lambda k, p: events.append((k, p)))
    assert out.status == "failed" and out.attempts[0].candidates[0].rejected == "policy"
    assert [k for k, _ in events].count("candidate") == 1
    assert_unmoved(world, before)  # refused in its dry run: nothing moved
    ok = eng.run_program(PUT, api)
    assert ok.status == "succeeded" and ok.attempts[0].candidates[0].rejected is None
    assert near(world, "red block", "green bowl")
