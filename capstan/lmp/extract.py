"""Pull Python code out of a model's answer: fenced blocks, bare code, or code wrapped in prose.

Small models ramble: "Sure! Here is the code:" before, "This code first ..." after, a second
"Example usage" block, a fence that never closes because max_tokens cut it. `extract_code`
returns the most plausible program (possibly "" when there is none).
"""

from __future__ import annotations

import ast
import re

# A closing fence starts its line (as in CommonMark), so ``` inside a string does not end the block.
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.DOTALL | re.MULTILINE)
_SPECIAL_TOKENS = re.compile(r"<\|[a-z_]+\|>")
_CODE_LANGS = {"", "python", "py", "python3"}
_USAGE_HINT = re.compile(r"(example|usage|test|output)", re.IGNORECASE)
PARSE_BUDGET = 4_000_000  # characters parsed in search of code in an answer: well under a second


def parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def extract_code(text: str) -> str:
    """The program in `text`: the first python fence (plus later fences that continue it), else the
    longest run of lines that parses as Python. Returns "" when nothing parses."""
    text = _SPECIAL_TOKENS.sub("", text).replace("\r\n", "\n")
    blocks = _fenced_blocks(text)
    if blocks:
        return _join_blocks(blocks, text)
    return _largest_parsing_window(text)


def _fenced_blocks(text: str) -> list[tuple[int, str]]:
    out = []
    for m in _FENCE.finditer(text):
        lang, body = m.group(1).lower(), m.group(2)
        if lang in _CODE_LANGS and body.strip():
            out.append((m.start(), body.rstrip() + "\n"))
    return out


def _join_blocks(blocks: list[tuple[int, str]], text: str) -> str:
    """First block, plus later blocks unless the prose before them says they are usage examples."""
    first_start, code = blocks[0]
    prev_end = first_start + len(code)
    for start, body in blocks[1:]:
        between = text[prev_end:start]
        prev_end = start + len(body)
        if _USAGE_HINT.search(between) or not parses(code + body):
            continue
        code += body
    if not parses(code):
        fixed = _largest_parsing_window(code)
        code = fixed or code
    return code


def _largest_parsing_window(text: str, budget: int = PARSE_BUDGET) -> str:
    """The longest run of lines that parses and looks like code, found among windows tried longest
    first until `budget` characters have been parsed (text that never parses would otherwise cost
    time cubic in its lines: seconds for a few kilobytes)."""
    lines = text.strip("\n").split("\n")
    if parses("\n".join(lines)) and _looks_like_code(lines):
        return "\n".join(lines).strip("\n") + "\n"
    best: tuple[int, int] | None = None
    n = len(lines)
    for start in range(n):
        if best and n - start <= best[1] - best[0]:
            break
        if not _starts_code(lines[start]):
            continue
        for end in range(n, start, -1):
            if best and end - start <= best[1] - best[0]:
                break
            window = "\n".join(lines[start:end])
            budget -= len(window)
            if budget < 0:
                break
            if parses(window) and _looks_like_code(lines[start:end]):
                best = (start, end)
                break
        if budget < 0:
            break
    if best is None:
        return ""
    return "\n".join(lines[best[0] : best[1]]).strip("\n") + "\n"


_CODE_START = re.compile(
    r"^(\s*#|[^\W\d][\w\.]*\s*(\(|=|\[|\+=|-=|,|:)|(def|for|if|while|import|from|return|with|try|class|"
    r"print|say|assert|raise|elif|else)\b|@)"
)


def _starts_code(line: str) -> bool:
    return bool(_CODE_START.match(line.strip())) and not line.startswith(" ")


def _looks_like_code(lines: list[str]) -> bool:
    """Reject prose that happens to parse (a lone word is a valid expression)."""
    meaningful = [ln for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    if not meaningful:
        return False
    return any(_CODE_START.match(ln.strip()) for ln in meaningful)


def strip_comments_only(code: str) -> bool:
    """True when `code` has no statements (only comments/blank lines)."""
    try:
        return not ast.parse(code).body
    except SyntaxError:
        return False
