"""The Qwen2.5 (ChatML) chat template, rendered by us so the fixed prefix is byte-for-byte stable.

    <|im_start|>system\n{content}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n...<|im_start|>assistant\n

Qwen's own template inserts a default system message when none is given; so do we.
"""

from __future__ import annotations

from collections.abc import Sequence

from capstan.llm.base import Message

DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
END_OF_TURN = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"


_SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


def defuse(content: str) -> str:
    """Message text with the template's control markers broken up, so a command cannot end its turn."""
    for marker in _SPECIAL:
        content = content.replace(marker, marker.replace("|", "| ", 1))
    return content


def render_messages(messages: Sequence[Message], *, default_system: bool = True) -> str:
    """ChatML text for whole messages (each ends with `<|im_end|>\\n`), without the assistant header."""
    parts = []
    if default_system and (not messages or messages[0].role != "system"):
        parts.append(f"<|im_start|>system\n{DEFAULT_SYSTEM}{END_OF_TURN}\n")
    parts.extend(f"<|im_start|>{m.role}\n{defuse(m.content)}{END_OF_TURN}\n" for m in messages)
    return "".join(parts)


def split_prompt(messages: Sequence[Message], prefix_messages: int) -> tuple[str, str]:
    """(fixed prefix text, per-request rest ending with the assistant header).

    With no hint (`prefix_messages` 0) everything before the last message is treated as the prefix."""
    if not messages:
        raise ValueError("a completion request needs at least one message")
    k = min(prefix_messages if prefix_messages > 0 else len(messages) - 1, len(messages))
    if k:
        prefix = render_messages(messages[:k])
    else:
        prefix = render_messages([]) if messages[0].role != "system" else ""
    rest = render_messages(messages[k:], default_system=False)
    return prefix, rest + "<|im_start|>assistant\n"


def split_open_prompt(messages: Sequence[Message], prefix_messages: int) -> tuple[str, str]:
    """Like `split_prompt`, but the rest ends where the last message's text ends, the message left
    open: the text every request that goes on with that message starts with."""
    prefix, rest = split_prompt(messages, prefix_messages)
    return prefix, rest[: rest.rindex(END_OF_TURN)]  # the template's own marker: content is defused
