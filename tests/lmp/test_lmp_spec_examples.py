"""The examples of a spec's docstring, and the check of an answer on them in the real sandbox."""

from __future__ import annotations

from capstan.lmp.spec_examples import SpecExample, example_check, spec_examples

SPEC = '''def add(a, b):
    """Add two numbers.
    >>> add(1, 2)
    3
    >>> add(x, 2)
    5
    add(2, 2) ==> 4
    add(0.1, 0.2) ➞ 0.3
    add([1], [2]) should return [1, 2]  # lists concatenate
    add(1, 1) == two
    """
'''


def test_examples_in_the_usual_docstring_forms_are_found_and_non_literals_skipped():
    assert spec_examples(SPEC, "add") == [
        SpecExample("add(1, 2)", "3"),
        SpecExample("add(2, 2)", "4"),
        SpecExample("add(0.1, 0.2)", "0.3"),
        SpecExample("add([1], [2])", "[1, 2]"),
    ]
    assert spec_examples(SPEC, "other") == []
    assert spec_examples("def f(:\n", "f") == []


def test_a_right_answer_passes_every_example_and_a_wrong_one_says_what_came_back(sandbox):
    check = example_check(sandbox, SPEC, "add")
    assert check is not None
    assert check("def add(a, b):\n    return a + b\n") == []
    failures = check("def add(a, b):\n    return a - b\n")
    assert failures[0] == "add(1, 2) returned -1, not 3" and len(failures) == 4
    raised = check("def add(a, b):\n    return a + b + 'x'\n")
    assert raised[0].startswith("add(1, 2) raised TypeError(")


def test_a_module_that_does_not_load_fails_every_example(sandbox):
    check = example_check(sandbox, SPEC, "add")
    assert check is not None
    failures = check("import os\ndef add(a, b):\n    return a + b\n")
    assert len(failures) == 4 and all("running it failed" in f for f in failures)


def test_a_spec_without_examples_gives_no_check(sandbox):
    assert example_check(sandbox, 'def f(x):\n    """Double x."""\n', "f") is None
