"""FunctionGenerator on HumanEval-style specs, checked by running the result in the real sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from capstan.lmp import FunctionGenerator

SPEC = '''from typing import List


def is_even(n: int) -> bool:
    return n % 2 == 0


def count_even(numbers: List[int]) -> int:
    """Count the even numbers.
    >>> count_even([1, 2, 4])
    2
    """
'''


def evaluate(sandbox, code: str, expr: str):
    res = sandbox.run(
        code + f"\nret_val = {expr}\n", host_functions={}, timeout_s=20, return_names=("ret_val",)
    )
    assert res.ok, res.error
    return res.values["ret_val"]


def test_whole_function_in_a_fence_keeps_spec_imports_and_helpers(sandbox, scripted):
    answer = (
        "Sure:\n```python\ndef count_even(numbers: List[int]) -> int:\n"
        "    return sum(1 for n in numbers if is_even(n))\n```\n"
        "Example usage:\n```python\nprint(count_even([2]))\n```"
    )
    llm = scripted(answer)
    out = FunctionGenerator(llm).generate(SPEC, "count_even")
    assert out.helpers == {} and len(out.llm_calls) == 1 and "print(" not in out.code
    assert "from typing import List" in out.code and "def is_even" in out.code
    assert evaluate(sandbox, out.code, "count_even([1, 2, 4, 6])") == 3
    assert "def count_even(numbers: List[int]) -> int:" in llm.requests[0].messages[-1].content


def test_body_only_answer_is_joined_to_the_spec(sandbox, scripted):
    out = FunctionGenerator(scripted("    return len([n for n in numbers if is_even(n)])\n")).generate(
        SPEC, "count_even"
    )
    assert evaluate(sandbox, out.code, "count_even([2, 3])") == 1


def test_hierarchical_mode_writes_missing_helpers_flat_mode_does_not(sandbox, scripted):
    main = "def count_even(numbers):\n    return len(keep_evens(numbers))\n"
    helper = "def keep_evens(xs):\n    return [x for x in xs if x % 2 == 0]\n"
    llm = scripted(main, helper)
    out = FunctionGenerator(llm).generate(SPEC, "count_even", hierarchical=True)
    assert set(out.helpers) == {"keep_evens"} and len(out.llm_calls) == 2
    assert "keep_evens(numbers)" in llm.requests[1].messages[-1].content
    assert evaluate(sandbox, out.code, "count_even([2, 4, 5])") == 2
    flat = FunctionGenerator(scripted(main)).generate(SPEC, "count_even", hierarchical=False)
    assert (
        flat.helpers == {}
        and len(flat.llm_calls) == 1
        and "keep_evens" not in flat.code.split("def count_even")[0]
    )


def test_forgotten_stdlib_import_is_added_not_generated(sandbox, scripted):
    main = "def count_even(numbers):\n    return sum(1 for _ in combinations(numbers, 1) if _[0] % 2 == 0)\n"
    llm = scripted(main)
    out = FunctionGenerator(llm).generate(SPEC, "count_even")
    assert len(out.llm_calls) == 1 and "from itertools import combinations" in out.code and out.helpers == {}
    assert evaluate(sandbox, out.code, "count_even([2, 4, 5])") == 2


def test_typing_names_and_modules_read_without_an_import_are_imported_in_both_modes(sandbox, scripted):
    """A helper written apart from the spec's imports annotates with `List`; an answer uses `math.`
    without importing it: both get their import, in flat and hierarchical mode alike."""
    spec = (
        'def total_root(numbers: list) -> float:\n    """Square root of the sum.\n'
        '    >>> total_root([1, 3])\n    2.0\n    """\n'
    )
    answer = "def total_root(numbers: list) -> float:\n    return math.sqrt(add_up(numbers))\n"
    helper = "def add_up(xs: List[int]) -> int:\n    return sum(xs)\n"
    out = FunctionGenerator(scripted(answer, helper)).generate(spec, "total_root", hierarchical=True)
    assert "from typing import List" in out.code and "import math" in out.code
    assert evaluate(sandbox, out.code, "total_root([1, 3])") == 2.0
    flat = FunctionGenerator(scripted(answer)).generate(spec, "total_root", hierarchical=False)
    assert "import math" in flat.code and "from typing import List" not in flat.code
    shadowed = "def total_root(numbers: list) -> float:\n    math = 2\n    return math * sum(numbers)\n"
    assert "import math" not in FunctionGenerator(scripted(shadowed)).generate(spec, "total_root").code


def test_stdlib_names_fgen_imports_are_importable_in_the_sandbox(sandbox):
    """The resolver writes `from <module> import <name>` for these instead of asking the model;
    each must get past the sandbox's static check and its import proxies."""
    from capstan.lmp.hierarchy import STDLIB_IMPORTS

    program = "".join(f"from {module} import {name}\n" for name, module in STDLIB_IMPORTS.items())
    program += f"ret_val = [callable(f) for f in ({', '.join(STDLIB_IMPORTS)})]"
    res = sandbox.run(program, timeout_s=10)
    assert res.ok, res.error
    assert res.values["ret_val"] == [True] * len(STDLIB_IMPORTS)


def test_flat_mode_gets_the_same_stdlib_preamble_as_hierarchical(sandbox, scripted):
    main = "def count_even(numbers):\n    return sum(1 for _ in combinations(numbers, 1) if _[0] % 2 == 0)\n"
    for hierarchical in (False, True):
        out = FunctionGenerator(scripted(main)).generate(SPEC, "count_even", hierarchical=hierarchical)
        assert "from itertools import combinations" in out.code, hierarchical
        assert evaluate(sandbox, out.code, "count_even([2, 4, 5])") == 2


ORIGINAL_FORMAT = (
    Path(__file__).resolve().parents[1] / "fixtures" / "bench" / "robocode_original_format.jsonl"
)


def original_problem(index: int = 0) -> dict:
    return json.loads(ORIGINAL_FORMAT.read_text().splitlines()[index])


def test_an_answer_restating_the_original_format_keeps_the_targets_body(sandbox, scripted):
    """The original Code-as-Policies prompts carry their own few-shot functions, each after a
    `# define function:` line. An answer that restates them (and the preamble) before the target
    must keep the model's definition of the target, not the spec's docstring-only stub."""
    problem = original_problem(2)  # polygon_area
    restated = problem["prompt"].split(f"# define function: {problem['entry_point']}")[0]
    answer = (
        f"```python\n{restated}def polygon_area(pts):\n    return Polygon([tuple(p) for p in pts]).area\n```"
    )
    llm = scripted(answer)
    out = FunctionGenerator(llm, star_names=sandbox.star_names).generate(problem["prompt"], "polygon_area")
    assert "# define function:" not in "".join(llm.requests[0].stop)
    assert out.helpers == {} and len(out.llm_calls) == 1, "Polygon comes from the star import, not fgen"
    assert evaluate(sandbox, out.code, "polygon_area([[0, 0], [1, 0], [0, 1]])") == 0.5


def test_star_imported_names_are_not_generated_as_helpers(sandbox, scripted):
    problem = original_problem(1)  # move_pts: translate and MultiPoint from the star imports
    body = problem["canonical_solution"]
    llm = scripted(f"def move_pts(pts, dx, dy):\n{body}")
    out = FunctionGenerator(llm, star_names=sandbox.star_names).generate(problem["prompt"], "move_pts")
    assert out.helpers == {} and len(out.llm_calls) == 1
    assert evaluate(sandbox, out.code, "move_pts([[0.0, 0.0]], 1.0, 2.0).tolist()") == [[1.0, 2.0]]


def test_both_modes_ask_first_in_one_plain_chat_message_and_only_the_planner_shows_decomposition(
    sandbox, scripted
):
    from capstan.lmp.spec_examples import example_check

    requests = {}
    for hierarchical in (False, True):
        llm = scripted(WRONG, WRONG, WRONG, WRONG)
        FunctionGenerator(llm).generate(
            SPEC, "count_even", hierarchical=hierarchical, check=example_check(sandbox, SPEC, "count_even")
        )
        requests[hierarchical] = llm.requests
    flat, hier = requests[False], requests[True]
    assert flat[0] == hier[0] == FunctionGenerator(llm).spec_request(SPEC)
    assert [m.role for m in flat[0].messages] == ["user"]  # no system text, no few-shot example
    assert flat[1] == hier[1]  # the rewrite, told which example failed, alike too
    assert len(flat) == 2 and len(hier) == 4  # only hierarchical mode then asks a planner (twice: inline)
    assert not any("most_common(words)" in m.content for r in flat for m in r.messages)
    shown = [m.content for m in hier[2].messages if "most_common(words)" in m.content]
    assert shown and all("def most_common" not in m for m in shown)  # called, not defined: fgen writes it


WRONG = "def count_even(numbers):\n    return len(numbers)\n"


def test_flat_mode_revises_an_answer_that_fails_the_specs_example(sandbox, scripted):
    from capstan.lmp.spec_examples import example_check

    right = "def count_even(numbers):\n    return sum(1 for n in numbers if is_even(n))\n"
    llm = scripted(WRONG, right)
    out = FunctionGenerator(llm).generate(
        SPEC, "count_even", hierarchical=False, check=example_check(sandbox, SPEC, "count_even")
    )
    assert out.attempts == 2 and out.example_failures == [] and out.helpers == {}
    feedback = llm.requests[1].messages[-1].content
    assert "count_even([1, 2, 4]) returned 3, not 2" in feedback
    assert evaluate(sandbox, out.code, "count_even([2, 3])") == 1


def test_hierarchical_mode_splits_a_function_whose_rewrite_fails_too_into_helpers_the_generator_writes(
    sandbox, scripted
):
    from capstan.lmp.spec_examples import example_check

    plan = (
        "```python\ndef count_even(numbers):\n"
        "    def keep_evens(xs):\n        return xs\n"  # the planner's own helper is not kept
        "    return len(keep_evens(numbers))"
    )
    helper = (
        'def keep_evens(xs):\n    """The even numbers of xs."""\n    return [x for x in xs if x % 2 == 0]\n'
    )
    llm = scripted(WRONG, WRONG, plan, helper)
    out = FunctionGenerator(llm).generate(
        SPEC, "count_even", hierarchical=True, check=example_check(sandbox, SPEC, "count_even")
    )
    assert out.attempts == 3 and out.example_failures == [] and set(out.helpers) == {"keep_evens"}
    assert llm.requests[2].messages[0].content.startswith("You plan Python functions")
    fgen_query = llm.requests[3].messages[-1].content
    assert "Count the even numbers." in fgen_query and "keep_evens(numbers)" in fgen_query
    assert evaluate(sandbox, out.code, "count_even([2, 4, 5])") == 2


def test_a_plan_that_does_every_step_inline_is_asked_once_more_for_helper_calls(sandbox, scripted):
    from capstan.lmp.spec_examples import example_check

    inline = "```python\ndef count_even(numbers):\n    return len([n for n in numbers if n % 2 == 1])"
    plan = "```python\ndef count_even(numbers):\n    return len(keep_evens(numbers))"
    helper = "def keep_evens(xs):\n    return [x for x in xs if x % 2 == 0]\n"
    llm = scripted(WRONG, WRONG, inline, plan, helper)
    out = FunctionGenerator(llm).generate(
        SPEC, "count_even", hierarchical=True, check=example_check(sandbox, SPEC, "count_even")
    )
    assert len(llm.requests) == 5 and out.example_failures == [] and set(out.helpers) == {"keep_evens"}
    again = llm.requests[3].messages
    assert again[0].content.startswith("You plan Python functions") and "n % 2 == 1" in again[-2].content
    assert "calls no new helper" in again[-1].content


def test_a_plan_whose_helpers_fail_an_example_goes_back_to_the_planner_once_with_it(sandbox, scripted):
    from capstan.lmp.spec_examples import example_check

    plan = "```python\ndef count_even(numbers):\n    return len(keep_odds(numbers))"
    wrong_helper = "def keep_odds(xs):\n    return [x for x in xs if x % 2 == 1]\n"
    mended = "```python\ndef count_even(numbers):\n    return len(keep_evens(numbers))"
    helper = "def keep_evens(xs):\n    return [x for x in xs if x % 2 == 0]\n"
    llm = scripted(WRONG, WRONG, plan, wrong_helper, mended, helper)
    out = FunctionGenerator(llm).generate(
        SPEC, "count_even", hierarchical=True, check=example_check(sandbox, SPEC, "count_even")
    )
    assert len(llm.requests) == 6 and out.attempts == 4 and out.example_failures == []
    assert set(out.helpers) == {"keep_evens"} and out.written == ["keep_odds", "keep_evens"]
    revise = llm.requests[4].messages
    assert (
        revise[0].content.startswith("You plan Python functions")
        and "keep_odds(numbers)" in revise[-2].content
    )
    assert "count_even([1, 2, 4])" in revise[-1].content and "new helper name" in revise[-1].content


def test_a_plan_that_still_fails_after_its_revision_is_not_asked_again(sandbox, scripted):
    from capstan.lmp.spec_examples import example_check

    plan = "```python\ndef count_even(numbers):\n    return len(keep_odds(numbers))"
    wrong_helper = "def keep_odds(xs):\n    return [x for x in xs if x % 2 == 1]\n"
    llm = scripted(WRONG, WRONG, plan, wrong_helper, plan, wrong_helper)
    out = FunctionGenerator(llm).generate(
        SPEC, "count_even", hierarchical=True, check=example_check(sandbox, SPEC, "count_even")
    )
    assert len(llm.requests) == 6 and out.attempts == 4 and len(out.example_failures) == 1


def test_a_plan_that_calls_a_helper_of_the_spec_or_the_standard_library_is_not_a_split(scripted):
    generator = FunctionGenerator(scripted())
    assert not generator._calls_helpers(
        SPEC, "    return sum(1 for n in numbers if is_even(n))", "count_even"
    )
    assert not generator._calls_helpers(SPEC, "    return len(list(combinations(numbers, 1)))", "count_even")
    assert generator._calls_helpers(SPEC, "    return len(keep_evens(numbers))", "count_even")


def test_when_the_revision_is_no_better_the_first_answer_stands(sandbox, scripted):
    from capstan.lmp.spec_examples import example_check

    worse = "def count_even(numbers):\n    return None\n"
    out = FunctionGenerator(scripted(WRONG, worse)).generate(
        SPEC, "count_even", hierarchical=False, check=example_check(sandbox, SPEC, "count_even")
    )
    assert out.attempts == 2 and "len(numbers)" in out.code and len(out.example_failures) == 1


def test_hierarchical_mode_asks_no_planner_when_the_rewrite_passes(sandbox, scripted):
    from capstan.lmp.spec_examples import example_check

    right = "def count_even(numbers):\n    return sum(1 for n in numbers if n % 2 == 0)\n"
    llm = scripted(WRONG, right)
    out = FunctionGenerator(llm).generate(
        SPEC, "count_even", hierarchical=True, check=example_check(sandbox, SPEC, "count_even")
    )
    assert out.attempts == 2 and out.example_failures == [] and len(llm.requests) == 2


def test_a_helper_that_raises_on_its_literal_call_is_told_and_written_again(sandbox, scripted):
    def trial(program: str) -> str | None:
        res = sandbox.run(program, host_functions={}, timeout_s=5, return_names=())
        return None if res.ok else str(res.error)

    main = (
        "def count_even(numbers):\n    assert halve(4) == 2\n"
        "    return sum(1 for n in numbers if n % 2 == 0)\n"
    )
    broken = "def halve(n):\n    return n / undefined_scale\n"
    fixed = "def halve(n):\n    return n // 2\n"
    llm = scripted(main, broken, fixed)
    out = FunctionGenerator(llm, trial=trial).generate(SPEC, "count_even", hierarchical=True)
    assert "n // 2" in out.helpers["halve"] and len(out.llm_calls) == 3
    assert "`halve(4)` raised" in llm.requests[2].messages[-1].content
    assert evaluate(sandbox, out.code, "count_even([2, 4, 5])") == 2
