from capstan.lmp.extract import extract_code


def test_fenced_block_with_prose_around():
    text = "Sure! Here is the code:\n```python\nput_first_on_second('a', 'b')\n```\nThis puts a on b."
    assert extract_code(text) == "put_first_on_second('a', 'b')\n"


def test_bare_code_passes_through():
    code = "for b in blocks:\n    put_first_on_second(b, 'green bowl')\n"
    assert extract_code(code) == code


def test_prose_before_and_after_bare_code_is_stripped():
    text = "Here is what I will do:\nx = get_obj_pos('red block')\nsay('done')\nThis moves nothing at all."
    assert extract_code(text) == "x = get_obj_pos('red block')\nsay('done')\n"


def test_unterminated_fence_cut_by_max_tokens():
    text = "```python\nfor b in blocks:\n    put_first_on_second(b, 'x')\nfor c in"
    assert extract_code(text) == "for b in blocks:\n    put_first_on_second(b, 'x')\n"


def test_example_usage_block_is_dropped_but_continuation_kept():
    text = "```python\ndef f(x):\n    return x + 1\n```\nExample usage:\n```python\nprint(f(2))\n```\n"
    assert extract_code(text) == "def f(x):\n    return x + 1\n"
    text2 = "```python\na = 1\n```\nThen:\n```python\nb = a + 1\n```"
    assert extract_code(text2) == "a = 1\nb = a + 1\n"


def test_special_tokens_and_non_python_fences():
    text = "```text\nnot code\n```\n```py\nsay('hi')\n```<|im_end|>"
    assert extract_code(text) == "say('hi')\n"


def test_nothing_to_extract():
    assert extract_code("I cannot do that, sorry.") == ""
    assert extract_code("") == ""


def test_text_that_never_parses_is_given_up_on_within_a_budget(monkeypatch):
    """800 code-looking lines that never parse: every window of them, without a budget, would be
    ~85 million characters parsed (about a minute here); the search stops at its budget."""
    from capstan.lmp import extract

    parsed = []
    real = extract.parses
    monkeypatch.setattr(extract, "parses", lambda code: parsed.append(len(code)) or real(code))
    assert extract_code("f(1,\n" * 800) == ""
    assert sum(parsed) <= extract.PARSE_BUDGET + len("f(1,\n" * 800)
    wrapped = "Here is the code:\n" + "say('done')\n" * 40 + "This says done forty times."
    assert extract_code(wrapped) == "say('done')\n" * 40  # a long real answer is still found whole


def test_a_program_whose_first_name_is_not_ascii_is_code():
    text = "Voici le code :\nplacé = get_obj_pos('red block')\nsay(str(placé))\nVoilà."
    assert extract_code(text) == "placé = get_obj_pos('red block')\nsay(str(placé))\n"


def test_a_fence_inside_a_string_does_not_end_the_block():
    code = "say('wrap code in ``` fences')\nput_first_on_second('red block', 'blue bowl')\n"
    text = f"Here:\n```python\n{code}```\nDone."
    assert extract_code(text) == code
