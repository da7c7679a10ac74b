"""FunctionGenerator on HumanEval-style specs, checked by running the result in the real sandbox."""

from __future__ import annotations

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


def test_stdlib_names_fgen_imports_are_importable_in_the_sandbox(sandbox):
    """The resolver writes `from <module> import <name>` for these instead of asking the model;
    each must get past the sandbox's static check and its import proxies."""
    from capstan.lmp.hierarchy import STDLIB_IMPORTS

    program = "".join(f"from {module} import {name}\n" for name, module in STDLIB_IMPORTS.items())
    program += f"ret_val = [callable(f) for f in ({', '.join(STDLIB_IMPORTS)})]"
    res = sandbox.run(program, timeout_s=10)
    assert res.ok, res.error
    assert res.values["ret_val"] == [True] * len(STDLIB_IMPORTS)
