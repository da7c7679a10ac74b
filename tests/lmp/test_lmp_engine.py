"""Engine end to end with a scripted LLM, the real sandbox and the real sim world."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from capstan.llm.base import ProviderUnavailableError
from capstan.lmp import Conversation, Engine, SkillLibrary


def pos(world, name):
    return world.state()["objects"][name]["position"]


FENCED = "Here you go:\n```python\n{}\n```\nThis should work."


def run(engine, api, text, conv=None, **kw):
    events: list[tuple[str, dict]] = []
    out = engine.run_command(text, api, conv, on_event=lambda k, p: events.append((k, p)), **kw)
    return out, events


def test_pick_place_succeeds_and_emits_events(world, api, sandbox, scripted):
    llm = scripted(FENCED.format("put_first_on_second('red block', 'green bowl')"))
    conv = Conversation()
    out, events = run(Engine(llm, sandbox), api, "put the red block in the green bowl", conv)
    assert out.status == "succeeded" and out.error is None
    assert out.code == "put_first_on_second('red block', 'green bowl')\n"
    assert np.linalg.norm(np.subtract(pos(world, "red block")[:2], pos(world, "green bowl")[:2])) < 0.05
    assert [k for k, _ in events] == ["llm_call", "code", "attempt"]
    call = events[0][1]
    assert call["lmp"] == "tabletop_ui" and call["messages_ref"].startswith("sha256:")
    assert {"completion", "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "latency_s"} <= set(
        call
    )
    assert events[2][1] == {"attempt": 1, "ok": True, "error": None}
    assert len(out.llm_calls) == 1 and conv.turns[0].command == "put the red block in the green bowl"


def test_self_repair_restores_the_world_and_retries(world, api, sandbox, scripted):
    start = pos(world, "red block")
    bad = "put_first_on_second('red block', 'green bowl')\nput_first_on_second('blue block', [5.0, 5.0])"
    good = "say('the red block is back: ' + str(round(get_obj_pos('red block')[0], 3)))"
    llm = scripted(bad, good)
    out, events = run(Engine(llm, sandbox, max_attempts=3), api, "do it")
    assert out.status == "succeeded" and len(out.attempts) == 2
    first = out.attempts[0]
    assert not first.ok and first.error.kind == "primitive" and first.error.line == 2
    assert out.attempts[1].ok and out.code == good + "\n"
    repair = llm.requests[1].messages[-1].content
    assert (
        "error (primitive)" in repair
        and "at line 2: `put_first_on_second('blue block', [5.0, 5.0])`" in repair
    )
    assert "red block moved from" in repair and "put back" in repair
    assert llm.requests[1].messages[-2].content == bad  # the failed answer is shown to the model
    assert np.allclose(pos(world, "red block")[:2], start[:2], atol=1e-6)  # the retry started clean
    assert [k for k, _ in events].count("attempt") == 2


def test_a_target_beyond_reach_asks_the_repair_to_do_what_fits_and_say_what_did_not(api, sandbox, scripted):
    from capstan.lmp.engine import BEYOND_REACH

    far = "put_first_on_second('red block', get_obj_pos('red block') + np.array([0.0, 2.0]))"
    fits = "put_first_on_second('red block', get_named_position('top side'))\nsay('The table ends there.')"
    llm = scripted(far, fits)
    out, _ = run(Engine(llm, sandbox, max_attempts=2), api, "move the red block 2 m away")
    assert out.status == "succeeded" and out.said == ["The table ends there."]
    repair = llm.requests[1].messages[-1].content
    assert "OutOfWorkspaceError" in repair and "nearest point inside" in repair and BEYOND_REACH in repair
    # the failed line with the point the error names, ready to use
    assert "Line 1 with the point the error names: `put_first_on_second('red block', [" in repair
    # an error in the program itself is not a question of reach
    llm = scripted("put_first_on_second('red block', 'green bowl')\nx = 1 / 0", "say('done')")
    run(Engine(llm, sandbox, max_attempts=2), api, "put the red block in the green bowl")
    assert BEYOND_REACH not in llm.requests[1].messages[-1].content


def test_absent_object_is_caught_before_anything_moves(world, api, sandbox, scripted):
    before = world.state()
    llm = scripted("put_first_on_second('purple block', 'green bowl')", "say('There is no purple block.')")
    out, _ = run(Engine(llm, sandbox), api, "put the purple block in the green bowl")
    assert out.status == "succeeded" and out.said == ["There is no purple block."]
    assert out.attempts[0].error.kind == "check" and "'purple block'" in out.attempts[0].error.message
    assert "# note: the scene has no purple block" in llm.requests[0].messages[-1].content
    for name, obj in before["objects"].items():
        assert np.allclose(pos(world, name), obj["position"], atol=1e-4)
    assert not [
        e for e in api.test_events if e[0] == "primitive_call" and e[1]["name"] == "put_first_on_second"
    ]


def test_gives_up_after_max_attempts(api, sandbox, scripted):
    llm = scripted("x = 1 / 0", "x = 1 / 0", "y = 1 / 0")  # the repeat is asked for again, once
    out, _ = run(Engine(llm, sandbox, max_attempts=2), api, "divide")
    assert out.status == "failed" and len(out.attempts) == 2 and len(llm.requests) == 3
    assert out.error.kind == "policy" and "ZeroDivisionError" in out.error.message and out.error.line == 1


def test_hierarchical_generation_recurses_and_fills_the_skill_library(api, sandbox, scripted):
    program = "say(describe_scene(bowls))"
    fn1 = (
        '```python\ndef describe_scene(names):\n    """Sentence."""\n'
        "    return 'I see ' + join_names(names)\n```"
    )
    fn2 = "def join_names(names):\n    return ' and '.join(names)\n\nprint(join_names(['a']))"
    llm = scripted(program, fn1, fn2)
    skills = SkillLibrary()
    engine = Engine(llm, sandbox, skills=skills)
    out, events = run(engine, api, "describe the bowls")
    assert out.status == "succeeded" and out.said == ["I see green bowl and blue bowl"]
    assert [c["lmp"] for c in out.llm_calls] == ["tabletop_ui", "fgen", "fgen"]
    assert "# define function: join_names" in llm.requests[2].messages[-1].content
    code_event = next(p for k, p in events if k == "code")
    assert set(code_event["functions"]) == {"describe_scene", "join_names"}
    assert "print(" not in out.code and out.code.endswith(program + "\n")
    assert skills.names() == ["describe_scene", "join_names"]
    # reused without asking the model again, and offered in the next prompt
    llm2 = scripted("say(describe_scene(blocks))")
    engine2 = Engine(llm2, sandbox, skills=SkillLibrary.from_json(skills.to_json()))
    out2, _ = run(engine2, api, "describe the blocks")
    assert out2.status == "succeeded" and [c["lmp"] for c in out2.llm_calls] == ["tabletop_ui"]
    assert "describe_scene(names) - Sentence." in llm2.requests[0].messages[-1].content


def test_a_stub_helper_is_refused_and_regenerated(api, sandbox, scripted):
    # A stub runs without error and does nothing: fgen is told so and asked once more.
    stub = "def put(target):\n    if isinstance(target, str):\n        pass\n    return None\n"
    real = "def put(target):\n    put_first_on_second('red block', target)\n"
    llm = scripted("put('green bowl')\nsay('done')", stub, real)
    skills = SkillLibrary()
    out, _ = run(Engine(llm, sandbox, skills=skills), api, "put it in the green bowl")
    assert out.status == "succeeded" and "put_first_on_second('red block', target)" in out.code
    assert [c["lmp"] for c in out.llm_calls] == ["tabletop_ui", "fgen", "fgen"]
    assert "`put` does nothing" in llm.requests[2].messages[-1].content
    assert skills.names() == ["put"]


def test_a_program_that_still_depends_on_a_stub_never_succeeds(api, sandbox, scripted):
    stub = 'def put(target):\n    """Put the block on target."""\n    raise NotImplementedError\n'
    llm = scripted("put('green bowl')\nsay('done')", stub, stub.replace("raise NotImplementedError", "..."))
    skills = SkillLibrary()
    out, _ = run(Engine(llm, sandbox, max_attempts=1, skills=skills), api, "put it in the green bowl")
    assert out.status == "failed" and out.error.kind == "check"
    assert "could not be used twice: `put` does nothing" in out.error.message
    assert skills.names() == [] and api.said == []


def test_real_code_with_an_except_pass_is_not_a_stub():
    from capstan.lmp.checks import is_stub

    assert not is_stub(
        "def f(xs):\n    try:\n        return xs[0]\n    except IndexError:\n        pass\n", "f"
    )
    assert is_stub('def f(x):\n    """doc"""\n    if x:\n        pass\n    else:\n        ...\n', "f")
    assert is_stub("def f():\n    return None\n", "f") and not is_stub("def f():\n    return 0\n", "f")


def test_generation_depth_and_count_limits(api, sandbox, scripted):
    llm = scripted("say(f())", "def f():\n    return g()\n")
    out, _ = run(Engine(llm, sandbox, max_attempts=1, max_fn_depth=1), api, "x")
    assert out.status == "failed" and out.error.kind == "check" and "nest only 1 deep" in out.error.message
    llm = scripted("say(f() + g())", "def f():\n    return 'a'\n")
    out, _ = run(Engine(llm, sandbox, max_attempts=1, max_fns=1), api, "x")
    assert out.status == "failed" and "at most 1 functions" in out.error.message
    assert len(llm.requests) == 2


def test_multi_turn_context_and_undo(world, api, sandbox, scripted):
    start = pos(world, "red block")
    conv = Conversation()
    llm = scripted("put_first_on_second('red block', 'blue bowl')", "undo()")
    engine = Engine(llm, sandbox)
    assert run(engine, api, "put the red block in the blue bowl", conv)[0].status == "succeeded"
    assert not np.allclose(pos(world, "red block")[:2], start[:2], atol=0.02)
    out, _ = run(engine, api, "undo that", conv)
    assert out.status == "succeeded"
    history = llm.requests[1].messages[-1].content
    assert (
        "# command: put the red block in the blue bowl\nput_first_on_second('red block', 'blue bowl')"
        in history
    )
    assert np.allclose(pos(world, "red block")[:2], start[:2], atol=1e-6)
    assert conv.turns[0].undone and conv.turns[1].is_undo


def test_undo_with_nothing_to_undo_is_a_clear_error(api, sandbox, scripted):
    out, _ = run(Engine(scripted("undo()"), sandbox, max_attempts=1), api, "undo")
    assert out.status == "failed" and out.error.kind == "primitive" and "nothing to undo" in out.error.message


def test_nested_parse_position_runs_its_own_program(world, api, sandbox, scripted):
    program = "p = parse_position('10 cm left of the blue bowl')\nput_first_on_second('red block', p)"
    nested = "ret_val = get_obj_pos('blue bowl') + np.array([-0.10, 0.0])"
    llm = scripted(program, nested)
    out, _ = run(Engine(llm, sandbox), api, "put the red block 10 cm left of the blue bowl")
    assert out.status == "succeeded", out.error
    assert [c["lmp"] for c in out.llm_calls] == ["tabletop_ui", "parse_position"]
    target = np.array(pos(world, "blue bowl")[:2]) + [-0.10, 0.0]
    assert np.linalg.norm(np.array(pos(world, "red block")[:2]) - target) < 0.03


def test_a_nested_position_with_an_infinite_coordinate_is_an_error(api, sandbox, scripted):
    """Three numbers are cut to (x, y), and the cut ones must be finite too."""
    program = "p = parse_position('far away')\nsay(str(p))"
    llm = scripted(program, "ret_val = [float('inf'), 0.5, 0.1]")
    out, _ = run(Engine(llm, sandbox, max_attempts=1), api, "say where far away is")
    assert out.status == "failed" and "NaN or inf" in out.error.message, out.error
    assert api.said == []


def test_a_nested_lmp_whose_model_fails_fails_the_run_as_the_model_s_failure(api, sandbox, scripted):
    """No repair can mend a provider that is down: the run fails with kind llm, at once."""
    from capstan.llm.base import ProviderUnavailableError

    program = "name = parse_obj_name('the left block')\nsay(name)"
    llm = scripted(program, ProviderUnavailableError("the model server is down"), "say('a repair')")
    out, _ = run(Engine(llm, sandbox, max_attempts=3), api, "say which block is on the left")
    assert out.status == "failed" and out.error.kind == "llm", out.error
    assert "the model server is down" in out.error.message
    assert len(llm.requests) == 2 and api.said == []
    failed = out.llm_calls[-1]  # the failed call is in the trace too
    assert failed["lmp"] == "parse_obj_name" and failed["completion"] == ""
    assert failed["error"] == "ProviderUnavailableError: the model server is down"


def test_nested_lmps_share_the_program_s_limits(api, sandbox, scripted):
    """A program asks at most MAX_ASKED new questions; and a nested program gets what is left of the
    calling program's time, not a limit of its own."""
    from capstan.lmp.nested import MAX_ASKED

    loop = "for i in range(100):\n    parse_question('question %d' % i)"
    llm = scripted(loop, *["ret_val = 'yes'"] * (MAX_ASKED + 1))
    out, _ = run(Engine(llm, sandbox, max_attempts=1), api, "ask a hundred questions")
    assert out.status == "failed" and f"at most {MAX_ASKED} new questions" in out.error.message
    assert len(llm.requests) == 1 + MAX_ASKED

    llm = scripted("say(parse_obj_name('the left block'))", "while True:\n    pass")
    started = time.monotonic()
    out, _ = run(Engine(llm, sandbox, max_attempts=1, timeout_s=3), api, "say which block is on the left")
    assert out.status == "failed" and time.monotonic() - started < 20  # not the nested default of 30 s


def test_run_program_maps_error_lines_and_needs_no_model(api, sandbox, scripted):
    llm = scripted()
    engine = Engine(llm, sandbox)
    ok = engine.run_program("say(str(len(blocks)))", api)
    assert ok.status == "succeeded" and ok.said == ["3"] and ok.llm_calls == []
    bad = engine.run_program("x = 1\nget_obj_pos('nothing here')\n", api)
    assert bad.status == "failed" and bad.error.line == 2 and bad.error.kind == "primitive"


def test_cancel_and_llm_failure(api, sandbox, scripted):
    cancel = threading.Event()
    cancel.set()
    out, _ = run(Engine(scripted("say('x')"), sandbox), api, "x", cancel=cancel)
    assert out.status == "cancelled" and out.error.kind == "cancelled"
    out, _ = run(Engine(scripted(ProviderUnavailableError("no model")), sandbox), api, "x")
    assert out.status == "failed" and out.error.kind == "llm" and "no model" in out.error.message


def test_prose_only_answer_is_repaired(api, sandbox, scripted):
    llm = scripted("I am not sure what you mean.", "say('ok')")
    out, _ = run(Engine(llm, sandbox), api, "hmm")
    assert out.status == "succeeded" and out.attempts[0].error.kind == "no_code"


@pytest.mark.parametrize("bad", ["import os\nsay('x')", "say(block_list[0])"])
def test_static_violations_never_run(api, sandbox, scripted, bad):
    out, _ = run(Engine(scripted(bad), sandbox, max_attempts=1), api, "x")
    assert out.status == "failed" and out.error.kind == "check" and out.said == []


def test_guessed_superlative_gets_one_repair(api, sandbox, scripted):
    guess = "say('red block')"
    llm = scripted(guess, "say(min(blocks, key=lambda n: get_obj_pos(n)[0]))")
    out, _ = run(Engine(llm, sandbox), api, "which block is the leftmost?")
    assert out.status == "succeeded" and "leftmost" in out.attempts[0].error.message
    llm = scripted(guess, guess, guess)  # the lint is advisory: the second guess runs (asked for twice)
    out, _ = run(Engine(llm, sandbox), api, "which block is the leftmost?")
    assert out.status == "succeeded" and out.said == ["red block"] and len(out.attempts) == 2


def test_one_line_repair_answer_is_spliced(api, sandbox, scripted):
    bad = "p = get_named_position('bottom corner')\nsay(str(round(p[1], 2)))"
    llm = scripted(bad, "p = get_named_position('bottom side')")
    out, _ = run(Engine(llm, sandbox), api, "where is the bottom?")
    assert out.attempts[0].error.kind == "check" and "'bottom side'" in out.attempts[0].error.message
    assert out.status == "succeeded" and out.code == bad.replace("'bottom corner'", "'bottom side'") + "\n"
    assert out.said == ["0.3"]
    assert "every line" in llm.requests[1].messages[-1].content


def test_every_read_is_in_the_trace_though_repeats_skip_the_round_trip(api, sandbox, scripted):
    """On the sim the engine runs reads as pure (the worker answers repeats itself); the trace
    still shows each call in program order, and a move in between makes the next read fresh."""
    program = (
        "for _ in range(3):\n    p = get_obj_pos('red block')\n"
        "put_first_on_second('red block', 'green bowl')\n"
        "q = get_obj_pos('red block')\nsay(str(round(float(q[0] - p[0]), 2) != 0))"
    )
    out, _ = run(Engine(scripted(program), sandbox), api, "move the red block to the green bowl")
    assert out.status == "succeeded", out.error
    names = [e[1]["name"] for e in api.test_events if e[0] == "primitive_call"]
    assert names == ["get_obj_pos"] * 3 + ["put_first_on_second", "get_obj_pos", "say"]
    assert out.said == ["True"]


def test_an_answer_that_copies_the_api_listing_is_a_clear_error(api, sandbox, scripted):
    listing = (
        "from typing import *\n\ndef put_first_on_second(obj, target):\n    ...\n\n"
        "put_first_on_second('red block', 'green bowl')\n"
    )
    fixed = "put_first_on_second('red block', 'green bowl')"
    llm = scripted(listing, fixed)
    out, _ = run(Engine(llm, sandbox), api, "put the red block in the green bowl")
    assert out.status == "succeeded" and out.attempts[0].error.kind == "check"
    assert "`put_first_on_second` is provided already" in out.attempts[0].error.message
    assert "is provided already" in llm.requests[1].messages[-1].content


def test_a_function_the_program_defines_that_does_nothing_is_refused(api, sandbox, scripted):
    out, _ = run(Engine(scripted("def tidy():\n    pass\n\ntidy()"), sandbox, max_attempts=1), api, "tidy up")
    assert out.status == "failed" and "function `tidy` does nothing" in out.error.message


def test_a_nested_lmp_call_is_its_own_trace_item(api, sandbox, scripted):
    program = "for b in parse_obj_name('the blocks left of the middle'):\n    say(b)"
    nested = "ret_val = [b for b in blocks if get_obj_pos(b)[0] < 0]"
    out, events = run(Engine(scripted(program, nested), sandbox), api, "name the blocks on the left")
    assert out.status == "succeeded", out.error
    assert [c["lmp"] for c in out.llm_calls] == ["tabletop_ui", "parse_obj_name"]
    (item,) = [p for k, p in events if k == "nested_lmp"]
    assert item["lmp"] == "parse_obj_name" and item["query"] == "the blocks left of the middle"
    assert item["code"].strip() == nested and item["answer"] == out.said


def test_a_repair_that_repeats_the_failed_program_is_asked_again_sampled(api, sandbox, scripted):
    bad = "put_first_on_second('red block', [0.9, 0.5])"
    good = "put_first_on_second('red block', [0.2, 0.5])"
    llm = scripted(bad, "# same again\n" + bad, good)
    out, _ = run(Engine(llm, sandbox, max_attempts=2), api, "move the red block right")
    assert out.status == "succeeded", out.error
    assert [c["lmp"] for c in out.llm_calls] == ["tabletop_ui"] * 3
    assert "same program that just failed" in llm.requests[2].messages[-1].content
    assert llm.requests[2].temperature > 0 and llm.requests[1].temperature == 0
    assert "nearest point inside is [0.25, 0.5]" in llm.requests[1].messages[-1].content


@pytest.mark.parametrize(
    ("flawed", "said"),
    [
        (  # a real function that calls a helper written as a stub beside it
            "def put(target):\n    do_put(target)\n\ndef do_put(target):\n    pass\n",
            "`do_put` does nothing",
        ),
        (  # a primitive replaced by one that does nothing useful
            "def put(target):\n    put_first_on_second('red block', target)\n\n"
            "def put_first_on_second(a, b):\n    return None\n",
            "`put_first_on_second` is provided already",
        ),
        (  # a nested LMP replaced: the program would pick another object
            "def put(target):\n    put_first_on_second(parse_obj_name('the red one', []), target)\n\n"
            "def parse_obj_name(query, names):\n    return 'blue block'\n",
            "`parse_obj_name` is provided already",
        ),
        (  # a stub after the real function: Python keeps the last one
            "def put(target):\n    put_first_on_second('red block', target)\n\ndef put(target):\n    pass\n",
            "`put` is defined more than once",
        ),
    ],
)
def test_every_function_an_fgen_answer_defines_is_checked(api, sandbox, scripted, flawed, said):
    real = "def put(target):\n    put_first_on_second('red block', target)\n"
    llm = scripted("put('green bowl')\nsay('done')", flawed, real)
    skills = SkillLibrary()
    out, _ = run(Engine(llm, sandbox, skills=skills), api, "put it in the green bowl")
    assert [c["lmp"] for c in out.llm_calls] == ["tabletop_ui", "fgen", "fgen"]
    assert said in llm.requests[2].messages[-1].content
    assert out.status == "succeeded" and out.code.count("def ") == 1
    assert skills.names() == ["put"]


def test_a_skill_that_defines_its_function_twice_is_refused():
    from capstan.lmp.skills import SkillError

    with pytest.raises(SkillError, match="more than once"):
        SkillLibrary().add("put", "def put(t):\n    say(t)\n\ndef put(t):\n    pass\n")


def test_a_helper_keeps_the_imports_its_answer_wrote(api, sandbox, scripted):
    """`import math` beside the helper: the program gets it too (it was dropped, and every repair
    failed on the same NameError). A class beside it reaches the checks, which say classes are not
    policy code, instead of a NameError."""
    helper = (
        "import math\n\ndef spot_near(name):\n    x, y = get_obj_pos(name)[:2]\n"
        "    return [math.floor(x * 100) / 100, y]\n"
    )
    program = "s = spot_near('blue bowl')\nsay(f'{s[0]:.2f}')"
    llm = scripted(program, helper)
    out, _ = run(Engine(llm, sandbox, max_attempts=1), api, "say where near the blue bowl is")
    assert out.status == "succeeded", out.error
    assert out.code.startswith("import math\n")

    helper = "class Spot:\n    pass\n\ndef spot_near(name):\n    return Spot()\n"
    llm = scripted(program, helper)
    out, _ = run(Engine(llm, sandbox, max_attempts=1), api, "say where near the blue bowl is")
    assert out.error.kind == "check" and "class definitions are not allowed" in out.error.message


def test_a_program_nested_too_deep_to_parse_is_a_syntax_error_not_a_crash(world, api, sandbox, scripted):
    out = Engine(scripted(), sandbox).run_program("x = " + "1 + " * 20_000 + "1\n", api)
    assert out.status == "failed" and out.error is not None and out.error.kind == "check"  # as syntax errors
    assert "nested too deep" in out.error.message
