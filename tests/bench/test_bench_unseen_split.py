"""The unseen split stays unseen: no command borrows a phrase from a prompt example, its colours
are ones no prompt mentions, every family has enough tasks, and its commands are pinned by hash
(a change to the split is a deliberate, reviewed edit of the pin, never a drift)."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources

import pytest
import yaml

from capstan.bench.tabletop import SPLITS, generate_tasks
from capstan.bench.tasks import default_seeds
from capstan.primitives.geometry import COLORS, EXTRA_COLORS
from capstan.sim.scene import parse_spec

# sha256 of the default unseen split's commands and checker parameters (see split_digest).
PINNED = "4501495b3aa3cba34e2ad8ef39653433ec663c3e8be0ef040e62661d43b30752"

OBJECT_WORDS = {"block", "blocks", "bowl", "bowls", "cube", "cubes"}
NUMBER_WORDS = {
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "half",
    "a",
}
STOPWORDS = {
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "on",
    "into",
    "onto",
    "at",
    "by",
    "it",
    "its",
    "and",
    "or",
    "is",
    "are",
    "be",
    "that",
    "this",
    "there",
    "with",
    "for",
    "from",
    "as",
    "so",
    "then",
    "them",
    "each",
    "every",
    "all",
    "other",
    "one",
    "ones",
    "s",
    "please",
    "you",
    "i",
    "me",
    "my",
    "your",
}


def words(text: str) -> list[str]:
    out = []
    for w in re.findall(r"[a-z0-9]+(?:'[a-z]+)?|\d+(?:\.\d+)?", text.lower().replace("_", " ")):
        if w in COLORS:
            out.append("<color>")
        elif w in OBJECT_WORDS:
            out.append("<object>")
        elif re.fullmatch(r"[\d.]+(cm|mm|m)?", w) or w in NUMBER_WORDS - {"a"}:
            out.append("<number>")
        else:
            out.append(w)
    return out


def content_grams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    """n-word sequences with at least two content words (not stop words, not placeholders)."""
    ws = words(text)
    grams = set()
    for i in range(len(ws) - n + 1):
        gram = tuple(ws[i : i + n])
        if sum(w not in STOPWORDS and not w.startswith("<") for w in gram) >= 2:
            grams.add(gram)
    return grams


def strings(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return []


def prompt_files() -> dict[str, str]:
    root = resources.files("capstan.prompts")
    return {
        e.name: e.read_text(encoding="utf-8") for e in root.iterdir() if e.name.endswith((".yaml", ".yml"))
    }


def prompt_example_grams() -> dict[tuple[str, ...], str]:
    grams: dict[tuple[str, ...], str] = {}
    for name, text in prompt_files().items():
        for example in yaml.safe_load(text).get("examples") or []:
            for s in strings(example):
                for line in s.splitlines():
                    for gram in content_grams(line):
                        grams.setdefault(gram, f"{name}: {line.strip()[:100]}")
    return grams


def unseen_tasks():
    return generate_tasks(default_seeds("unseen"), split="unseen")


def split_digest(tasks) -> str:
    rows = [[t.id, list(t.commands), t.params] for t in tasks]
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def test_no_unseen_command_shares_a_phrase_with_a_prompt_example():
    examples = prompt_example_grams()
    assert len(examples) > 100, "the prompts' examples were not read"
    clashes = [
        f"{t.id} {cmd!r} ~ {examples[gram]!r} ({' '.join(gram)})"
        for t in unseen_tasks()
        for cmd in t.commands
        for gram in content_grams(cmd)
        if gram in examples
    ]
    assert not clashes, "\n".join(clashes)


def test_the_overlap_check_catches_a_copied_example():
    text = next(iter(prompt_example_grams().values())).split(": ", 1)[1]
    assert content_grams(text) & set(prompt_example_grams()), text
    # colours, objects and numbers do not hide a copy
    assert content_grams("put the teal cube 12cm away from the bowls") == content_grams(
        "put the red block 5 away from the bowl"
    )


def test_unseen_colours_are_mentioned_nowhere_in_the_prompts():
    assert len(EXTRA_COLORS) >= 4
    for name, text in prompt_files().items():
        mentioned = [c for c in EXTRA_COLORS if re.search(rf"\b{c}\b", text, re.IGNORECASE)]
        assert not mentioned, f"{name} mentions {mentioned}"
    colors = {o.split()[0] for t in unseen_tasks() if t.family == "unseen_colors" for o in t.scene["objects"]}
    assert colors <= set(EXTRA_COLORS) and len(colors) >= 4


def test_every_family_has_at_least_four_phrasings_and_valid_scenes():
    tasks = unseen_tasks()
    for name, family in SPLITS["unseen"].items():
        mine = [t for t in tasks if t.family == name]
        assert len(family.phrasings) >= 4 and len(mine) >= 4, name
        assert len({t.commands for t in mine}) == len(mine), f"{name}: repeated commands"
        for t in mine:
            parse_spec(t.scene)
            assert t.id.startswith("unseen/") and t.split == "unseen"


def test_the_seen_and_unseen_ids_never_collide():
    seen = {t.id for t in generate_tasks(10, split="seen")}
    assert not seen & {t.id for t in unseen_tasks()}


def test_the_unseen_split_is_pinned():
    assert split_digest(unseen_tasks()) == PINNED, (
        "the unseen split changed; it must not be tuned towards the prompts or the model. If this change "
        "is a deliberate correction, update PINNED in its own reviewed commit."
    )


@pytest.mark.parametrize("split", ["seen", "unseen"])
def test_generation_is_deterministic(split):
    a, b = generate_tasks(3, split=split), generate_tasks(3, split=split)
    assert [t.to_json() for t in a] == [t.to_json() for t in b]
