from capstan.lmp.checks import (
    absent_mentions,
    named_position_targets,
    unchecked_superlative,
    undefined_calls,
    undefined_names,
    unknown_object_literals,
)


def test_undefined_calls_ignore_builtins_defined_and_known():
    code = "def g(x):\n    return h(x)\nys = sorted(g(1) for _ in range(2))\nput(ys)\nmake_line(3)\n"
    assert undefined_calls(code, {"put"}) == {"h": ["return h(x)"], "make_line": ["make_line(3)"]}


def test_undefined_names_reports_reads_of_unbound_names():
    problems = undefined_names("for b in block_names:\n    say(b)\n", {"say"})
    assert [(p.line, "block_names" in p.message) for p in problems] == [(1, True)]
    assert undefined_names("x = [b for b in blocks]\n", {"blocks"}) == []


def test_unknown_object_literals():
    scene = ["red block", "green bowl"]
    code = "put_first_on_second('purple block', 'green bowl')\nsay('there is no purple block')\n"
    problems = unknown_object_literals(code, scene)
    assert len(problems) == 1 and problems[0].line == 1 and "'purple block'" in problems[0].message
    # membership tests are questions, not uses
    assert unknown_object_literals("if 'blue bowl' in objects:\n    say('yes')\n", scene) == []
    assert unknown_object_literals("put_first_on_second('red block', 'green bowl')\n", scene) == []


def test_absent_mentions():
    assert absent_mentions("put the Purple block in the green bowl", ["red block", "green bowl"]) == [
        "purple block"
    ]
    assert absent_mentions("stack the blocks", ["red block"]) == []


def test_named_places_as_the_primitive_reads_them_pass():
    assert named_position_targets("put_first_on_second('red block', 'top left corner')\n") == []
    assert named_position_targets("p = get_named_position('the far right corner')\n") == []


def test_superlative_must_be_computed():
    guessed = "put_first_on_second('yellow block', [0.0, 0.4])\n"
    assert "top-most" in unchecked_superlative("move the top-most block down", guessed)[0].message
    computed = "b = max(blocks, key=lambda n: get_obj_pos(n)[1])\n"
    assert unchecked_superlative("move the top-most block down", computed) == []
    assert unchecked_superlative("move the red block down", guessed) == []
    # a superlative that picks a part of the table names a place, not an object to compute
    corner = "put_first_on_second('cyan block', get_named_position('bottom left corner'))\n"
    assert unchecked_superlative("take the cyan block to the left corner nearest the robot", corner) == []
    assert unchecked_superlative("put it by the edge closest to the robot", corner) == []
    assert unchecked_superlative("move the block nearest the corner to the bowl", guessed)
    assert unchecked_superlative("put it in the corner closest to the blue bowl", corner)
    assert unchecked_superlative("put it in the nearest corner", corner)
    assert unchecked_superlative("put the block closest to the robot in the corner nearest it", guessed)


def test_unknown_named_position():
    problems = named_position_targets("p = get_named_position('the bottom')\np = get_named_position('sid')\n")
    assert len(problems) == 1 and problems[0].line == 2 and "'left side'" in problems[0].message


def test_one_line_repair_is_spliced_into_the_failed_program():
    from capstan.lmp.runner import splice_fix
    from capstan.primitives.outcome import ErrorKind, RunError

    program = "b = get_named_position('bottom')\nfor x in xs:\n    put_first_on_second(x, b)\n"
    err = RunError(ErrorKind.PRIMITIVE, "unknown", 1)
    fixed = splice_fix(program, "b = get_named_position('bottom side')\n", err)
    assert fixed == program.replace("'bottom'", "'bottom side'")
    # a different one-liner (a refusal) replaces the program instead
    assert splice_fix(program, "say('I cannot do that.')\n", err) == "say('I cannot do that.')\n"
    assert splice_fix(program, "a = 1\nb = 2\n", err) == "a = 1\nb = 2\n"


def test_a_failed_placing_line_is_rewritten_with_the_point_its_error_names():
    from capstan.lmp.runner import line_with_suggested_point
    from capstan.primitives.outcome import ErrorKind, RunError

    outside = "OutOfWorkspaceError: target [0.5, 0.5] is outside ...; the nearest point inside is [0.25, 0.5]"
    program = "p = get_obj_pos('pink block')\nput_first_on_second('pink block', p + np.array([0.3, 0.0]))\n"
    err = RunError(ErrorKind.PRIMITIVE, outside, 2)
    assert line_with_suggested_point(program, err) == "put_first_on_second('pink block', [0.25, 0.5])"
    rim = (
        "PlacementError: target [0.17, 0.58]: on the rim of the 'blue bowl'; "
        "the nearest free spot is [0.2, 0.6]"
    )
    placed = RunError(ErrorKind.PRIMITIVE, rim, 1)
    assert line_with_suggested_point("place(target=[0.17, 0.58])\n", placed) == "place(target=[0.2, 0.6])"
    # one point cannot serve every pass of a loop; other calls and other errors have no such line
    loop = "for b in blocks:\n    put_first_on_second(b, [0.5, 0.5])\n"
    assert line_with_suggested_point(loop, RunError(ErrorKind.PRIMITIVE, outside, 2)) is None
    gripper = "move_gripper_to([0.5, 0.5, 0.1])\n"
    assert line_with_suggested_point(gripper, RunError(ErrorKind.PRIMITIVE, outside, 1)) is None
    assert line_with_suggested_point(program, RunError(ErrorKind.PRIMITIVE, "GraspError: nothing", 2)) is None
    assert line_with_suggested_point(program, RunError(ErrorKind.CHECK, outside, 2)) is None
