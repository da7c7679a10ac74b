import ast
import dataclasses

import pytest

from capstan.lmp.nested import policy_api_text
from capstan.lmp.prompt import (
    LMP_NAMES,
    PromptError,
    build_lead_request,
    build_request,
    load_prompt,
    parse_prompt,
)

SCENE = ["red block", "blue block", "green bowl"]
POS = {"red block": [0.1, 0.5], "blue block": [-0.1, 0.4], "green bowl": [0.0, 0.6]}


@pytest.mark.parametrize("name", LMP_NAMES)
def test_every_prompt_loads_and_every_example_parses(name):
    spec = load_prompt(name)
    assert spec.name == name and spec.version >= 1 and spec.examples
    for ex in spec.examples:
        code = ex["code"].replace("```python", "").replace("```", "")
        ast.parse(code)


def test_tabletop_examples_cover_the_required_behaviours():
    text = " | ".join(e["query"] for e in load_prompt("tabletop_ui").examples)
    for needle in (
        "stack",
        "same color",
        "leftmost",
        "rightmost",
        "closest",
        "corner",
        "side",
        "circle",
        "triangle",
        "square",
        "line",
        "how many",
        "10 cm",
        "undo",
        "now put it",
        "no",
        "left of",
    ):
        assert needle in text, needle


def test_request_has_scene_docstrings_and_a_fixed_prefix(api):
    spec = load_prompt("tabletop_ui")
    api_text = policy_api_text(api)
    r1 = build_request(spec, {"api": api_text}, "put the red block in the green bowl", SCENE, POS)
    r2 = build_request(
        spec,
        {"api": api_text},
        "how many blocks are there?",
        SCENE[:2],
        None,
        history=[{"command": "stack the blocks", "code": "pass"}],
    )
    assert r1.prefix_messages == r2.prefix_messages == 1 + 2 * len(spec.core_examples)
    assert r1.messages[: r1.prefix_messages] == r2.messages[: r2.prefix_messages]
    system = r1.messages[0].content
    assert "\nput_first_on_second(obj: str, target) -> None\n    Pick the block `obj`" in system
    assert "def " not in system.split("Functions you can call:")[1], "a listing of def stubs gets copied back"
    for nested in (
        "parse_obj_name(description: str)",
        "parse_position(description: str)",
        "transform_shape_pts(description: str, shape_pts)",
    ):
        assert nested in system, nested
    last = r1.messages[-1].content
    assert "objects = ['red block', 'blue block', 'green bowl']" in last
    assert "blocks = ['red block', 'blue block']" in last and "bowls = ['green bowl']" in last
    assert last.endswith("# command: put the red block in the green bowl")
    assert "# command: stack the blocks\npass" in r2.messages[-1].content
    assert len(r1.messages) == r1.prefix_messages + 2 * spec.retrieve + 1


def test_retrieved_examples_follow_the_fixed_prefix():
    spec = dataclasses.replace(load_prompt("tabletop_ui"), core=8, retrieve=3, show_positions=True)
    r = build_request(spec, {"api": "x"}, "stack the blocks", SCENE, POS)
    assert r.prefix_messages == 17 and len(r.messages) == 17 + 2 * 3 + 1
    assert "red block (0.10, 0.50)" in r.messages[-1].content
    queries = [e["query"] for e in spec.retrieved("move the rightmost block to the top left corner")]
    assert queries[-1] == "move the rightmost block to the bottom left corner"
    assert any("square" in e["query"] for e in spec.retrieved("make a square of blocks"))


def test_absent_objects_are_noted_for_the_model():
    spec = load_prompt("tabletop_ui")
    r = build_request(spec, {"api": "x"}, "put the purple block in the green bowl", SCENE, POS)
    assert "# note: the scene has no purple block" in r.messages[-1].content


def test_malformed_prompt_files_name_the_problem():
    with pytest.raises(PromptError, match="missing required field 'system'"):
        parse_prompt("name: x\nversion: 1\nexamples: []\n")
    with pytest.raises(PromptError, match="no prompt file"):
        load_prompt("nope")


def test_the_lead_request_is_how_every_next_request_begins():
    spec = load_prompt("tabletop_ui")
    api = {"api": "put_first_on_second(obj, target)"}
    code = "put_first_on_second('red block', 'green bowl')\n"
    turns = [{"command": "put the red block in the green bowl", "code": code}]
    for skills in ((), ("tidy(blocks)",)):
        lead = build_lead_request(spec, api, SCENE, None, turns, skills)
        assert lead is not None and lead.prefix_messages == len(lead.messages) - 1
        opened = lead.messages[-1].content
        assert opened.startswith("objects = ") and "# earlier commands" in opened
        assert opened.endswith("# command:") and ("tidy(blocks)" in opened) == bool(skills)
        full = build_request(spec, api, "now stack the blocks", SCENE, None, turns, skills)
        assert full.messages[:-1] == lead.messages[:-1] and full.prefix_messages == lead.prefix_messages
        assert full.messages[-1].content.startswith(opened)
    # a note on a missing object comes before the command: the lead holds up to there
    full = build_request(spec, api, "now the purple block", SCENE, None, turns)
    lead = build_lead_request(spec, api, SCENE, None, turns)
    assert lead is not None and "# note:" in full.messages[-1].content
    assert full.messages[-1].content.startswith(lead.messages[-1].content.rsplit("# command:", 1)[0])
    # examples picked for the command would come before the scene: only the prefix is known ahead
    assert build_lead_request(dataclasses.replace(spec, core=3, retrieve=2), api, SCENE) is None
