import pytest

from capstan.lmp.skills import SkillError, SkillLibrary

CODE = (
    'def stack(objs):\n    """Stack objs bottom-up."""\n'
    "    for a, b in zip(objs[1:], objs):\n        put_first_on_second(a, b)\n"
)


def test_add_get_signatures_and_json_round_trip(tmp_path):
    lib = SkillLibrary()
    lib.add("stack", CODE)
    assert "stack" in lib and lib.get("stack") == CODE
    assert lib.signatures() == ["stack(objs) - Stack objs bottom-up."]
    path = tmp_path / "skills.json"
    lib.save(path)
    loaded = SkillLibrary.load(path)
    assert loaded.names() == ["stack"] and loaded.get("stack") == CODE
    assert loaded._skills["stack"].uses == 2  # one use before export, one now


def test_rejects_code_without_the_function():
    with pytest.raises(SkillError, match="does not define"):
        SkillLibrary().add("other", CODE)
    with pytest.raises(SkillError, match="not a skill library"):
        SkillLibrary.from_json('{"skills": []}')


def test_bounded_size_drops_least_used():
    lib = SkillLibrary(max_skills=2)
    lib.add("a", "def a():\n    pass\n")
    lib.get("a")
    lib.add("b", "def b():\n    pass\n")
    lib.add("c", "def c():\n    pass\n")
    assert lib.names() == ["a", "c"]
