"""Prompt files (prompts/*.yaml) and how they become chat requests.

A request is laid out for prefix caching: the fixed part first - the system text (rendered with
the API description, which does not change between commands) and the core few-shot examples -
then the per-command part: examples retrieved for this command, and one user message with the
scene, earlier turns and the command. `CompletionRequest.prefix_messages` marks the fixed part.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import yaml

from capstan.llm.base import CompletionRequest, Message
from capstan.lmp.checks import absent_mentions
from capstan.lmp.retrieve import ExampleIndex

LMP_NAMES = (
    "fgen",
    "parse_obj_name",
    "parse_position",
    "parse_question",
    "tabletop_ui",
    "transform_shape_pts",
)
_EXAMPLE_WS = ((-0.25, 0.25), (0.30, 0.70))  # example scenes get positions inside this area


class PromptError(ValueError):
    """A prompt file is missing or malformed (the message names the file and the field)."""


@dataclass
class PromptSpec:
    name: str
    version: int
    system: str
    examples: list[dict]
    user: str = "{scene}{history}{query}"
    max_tokens: int = 400
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    allowed_names: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    core: int | None = None  # how many leading examples are the fixed prefix (None: all)
    retrieve: int = 0  # how many more examples to retrieve from the rest per query
    show_positions: bool = True
    extra: dict = field(default_factory=dict)
    _index: ExampleIndex | None = field(default=None, repr=False)

    @property
    def core_examples(self) -> list[dict]:
        return self.examples if self.core is None else self.examples[: self.core]

    @property
    def bank(self) -> list[dict]:
        return [] if self.core is None else self.examples[self.core :]

    def retrieved(self, query: str) -> list[dict]:
        if not self.retrieve or not self.bank:
            return []
        if self._index is None:
            self._index = ExampleIndex([e["query"] for e in self.bank])
        return [self.bank[i] for i in self._index.top(query, self.retrieve)]


def load_prompt(name: str) -> PromptSpec:
    """Load prompts/<name>.yaml from the installed `prompts` package."""
    try:
        text = importlib.resources.files("capstan.prompts").joinpath(f"{name}.yaml").read_text()
    except FileNotFoundError as exc:
        raise PromptError(f"no prompt file prompts/{name}.yaml; known: {', '.join(LMP_NAMES)}") from exc
    return parse_prompt(text, source=f"prompts/{name}.yaml")


def parse_prompt(text: str, source: str = "<prompt>") -> PromptSpec:
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise PromptError(f"{source}: expected a mapping at the top level")
    for key in ("name", "version", "system", "examples"):
        if key not in data:
            raise PromptError(f"{source}: missing required field {key!r}")
    model = data.get("model") or {}
    for i, ex in enumerate(data["examples"]):
        if "query" not in ex or "code" not in ex:
            raise PromptError(f"{source}: example {i} needs 'query' and 'code'")
    known = {"name", "version", "system", "examples", "model", "user", "allowed_names", "modules"}
    known |= {"core", "retrieve", "show_positions"}
    return PromptSpec(
        name=data["name"],
        version=int(data["version"]),
        system=data["system"],
        examples=list(data["examples"]),
        user=data.get("user", "{scene}{history}{query}"),
        max_tokens=int(model.get("max_tokens", 400)),
        temperature=float(model.get("temperature", 0.0)),
        stop=tuple(model.get("stop", ())),
        allowed_names=tuple(data.get("allowed_names", ())),
        modules=tuple(data.get("modules", ())),
        core=data.get("core"),
        retrieve=int(data.get("retrieve", 0)),
        show_positions=bool(data.get("show_positions", True)),
        extra={k: v for k, v in data.items() if k not in known},
    )


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace `{key}` for the keys given; other braces (code, dicts) are left alone."""
    return re.sub(
        r"\{(\w+)\}", lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template
    )


# ---- the scene and history blocks -------------------------------------------------------------


def scene_block(objects: Sequence[str], positions: Mapping[str, Sequence[float]] | None = None) -> str:
    """The scene as the Python the program can use (the same lists are predefined when it runs)."""
    objects = list(objects)
    blocks = [o for o in objects if o.endswith("block")]
    bowls = [o for o in objects if o.endswith("bowl")]
    lines = [f"objects = {objects!r}", f"blocks = {blocks!r}", f"bowls = {bowls!r}"]
    if positions:
        pos = ", ".join(
            f"{n} ({positions[n][0]:.2f}, {positions[n][1]:.2f})" for n in objects if n in positions
        )
        lines.append(f"# positions [x, y]: {pos}")
    return "\n".join(lines) + "\n"


def example_positions(ex: dict) -> dict[str, list[float]]:
    """Deterministic made-up positions for an example scene (seeded by its query)."""
    seed = int(hashlib.sha256(ex["query"].encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    (x0, x1), (y0, y1) = _EXAMPLE_WS
    return {n: [float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))] for n in ex.get("objects", [])}


def history_block(history: Sequence[Mapping[str, str]]) -> str:
    if not history:
        return ""
    parts = ["# earlier commands in this session (oldest first) and the code that ran:"]
    for turn in history:
        parts.append(f"# command: {turn['command']}")
        parts.append(turn["code"].rstrip())
    return "\n".join(parts) + "\n# ---\n"


def notes_block(query: str, objects: Sequence[str] | None, skills: Sequence[str] = ()) -> str:
    lines = []
    if objects is not None:
        missing = absent_mentions(query, objects)
        if missing:
            lines.append(f"# note: the scene has no {', no '.join(missing)}")
    if skills:
        lines.append("# functions from earlier commands you may call: " + "; ".join(skills))
    return "\n".join(lines) + ("\n" if lines else "")


# ---- rendering --------------------------------------------------------------------------------


def render_user(
    spec: PromptSpec,
    query: str,
    objects: Sequence[str] | None = None,
    positions: Mapping[str, Sequence[float]] | None = None,
    history: Sequence[Mapping[str, str]] = (),
    skills: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
) -> str:
    return fill(spec.user, _user_values(spec, query, objects, positions, history, skills, extra)).strip("\n")


def _user_values(
    spec: PromptSpec,
    query: str,
    objects: Sequence[str] | None,
    positions: Mapping[str, Sequence[float]] | None,
    history: Sequence[Mapping[str, str]],
    skills: Sequence[str],
    extra: Mapping[str, str] | None,
) -> dict[str, str]:
    scene = scene_block(objects, positions if spec.show_positions else None) if objects is not None else ""
    return {
        "scene": scene,
        "history": history_block(history),
        "notes": notes_block(query, objects, skills),
        "query": query,
        **(extra or {}),
    }


def _example_messages(spec: PromptSpec, ex: dict) -> list[Message]:
    objects = ex.get("objects")
    positions = ex.get("positions") or (example_positions(ex) if objects is not None else None)
    user = render_user(spec, ex["query"], objects, positions, ex.get("history", ()), extra=ex.get("extra"))
    return [Message("user", user), Message("assistant", ex["code"].strip("\n"))]


def build_request(
    spec: PromptSpec,
    system_values: Mapping[str, str],
    query: str,
    objects: Sequence[str] | None = None,
    positions: Mapping[str, Sequence[float]] | None = None,
    history: Sequence[Mapping[str, str]] = (),
    skills: Sequence[str] = (),
    extra: Mapping[str, str] | None = None,
    temperature: float | None = None,
) -> CompletionRequest:
    """Fixed prefix (system + core examples), then retrieved examples, then this query."""
    messages = [Message("system", fill(spec.system, system_values).strip())]
    for ex in spec.core_examples:
        messages += _example_messages(spec, ex)
    prefix = len(messages)
    for ex in spec.retrieved(query):
        messages += _example_messages(spec, ex)
    messages.append(Message("user", render_user(spec, query, objects, positions, history, skills, extra)))
    return CompletionRequest(
        messages=tuple(messages),
        max_tokens=spec.max_tokens,
        temperature=spec.temperature if temperature is None else temperature,
        stop=spec.stop,
        prefix_messages=prefix,
    )


def build_lead_request(
    spec: PromptSpec,
    system_values: Mapping[str, str],
    objects: Sequence[str] | None = None,
    positions: Mapping[str, Sequence[float]] | None = None,
    history: Sequence[Mapping[str, str]] = (),
    skills: Sequence[str] = (),
) -> CompletionRequest | None:
    """What `build_request` for the next query will start with: its fixed prefix, then the user
    message up to the query (scene, earlier turns, skills, the line's lead-in), for
    LLMProvider.prefill, which leaves that message open. It assumes the query names nothing missing
    from the scene; a note on something missing would come first, and the reading then helps up to
    it. None when examples retrieved for the query come first: then only the prefix is known ahead."""
    if spec.retrieve and spec.bank:
        return None
    request = build_request(spec, system_values, "", objects, positions, history, skills)
    lead = spec.user.split("{query}", 1)[0]
    # a space before the query would be read as its own token, but the query's first word takes it
    values = _user_values(spec, "", objects, positions, history, skills, None)
    text = fill(lead, values).lstrip("\n").rstrip(" ")
    messages = (*request.messages[: request.prefix_messages], Message("user", text))
    return dataclasses.replace(request, messages=messages)


def with_feedback(request: CompletionRequest, answer: str, feedback: str) -> CompletionRequest:
    """The same conversation plus the model's answer and what was wrong with it."""
    messages = (
        *request.messages,
        Message("assistant", answer.strip() or "# (no code)"),
        Message("user", feedback),
    )
    return dataclasses.replace(request, messages=messages)


def describe_api(describe: object) -> str:
    """PolicyAPI.describe() as prompt text, whatever shape it returns (str, dict or list)."""
    if isinstance(describe, str):
        return describe.strip()
    if isinstance(describe, Mapping):
        return "\n".join(
            f"{k}: {v}" if not isinstance(v, str) or "\n" not in v else f"{k}\n{v}"
            for k, v in describe.items()
        )
    if isinstance(describe, Sequence):
        return "\n".join(describe_api(d) for d in describe)
    return str(describe)
