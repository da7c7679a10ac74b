"""Pick the few-shot examples closest to a command: TF-IDF cosine similarity over words.

Colors are folded into one token so "the yellow bowl" matches an example about "the red bowl";
object kinds and spatial words carry the weight instead.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from capstan.lmp.checks import COLORS

_WORD = re.compile(r"[a-z]+|\d+")
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "to",
        "and",
        "on",
        "in",
        "it",
        "its",
        "at",
        "is",
        "me",
        "my",
        "please",
        "with",
        "into",
        "onto",
        "from",
        "that",
        "this",
    ]
)
_STEMS = (("ies", "y"), ("es", ""), ("s", ""))


def tokens(text: str) -> list[str]:
    out = []
    for w in _WORD.findall(text.lower()):
        if w in _STOP:
            continue
        if w in COLORS:
            out.append("<color>")
            continue
        if w.isdigit():
            out.append("<num>")
            continue
        for suffix, repl in _STEMS:
            if len(w) > 4 and w.endswith(suffix) and not w.endswith("ss"):
                w = w[: -len(suffix)] + repl
                break
        out.append(w)
    return out


class ExampleIndex:
    def __init__(self, texts: list[str]):
        self.docs = [Counter(tokens(t)) for t in texts]
        n = len(self.docs)
        df = Counter(w for d in self.docs for w in d)
        self.idf = {w: math.log((1 + n) / (1 + c)) + 1.0 for w, c in df.items()}
        self.vecs = [self._vec(d) for d in self.docs]

    def _vec(self, counts: Counter) -> dict[str, float]:
        v = {w: c * self.idf.get(w, 1.0) for w, c in counts.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    def scores(self, query: str) -> list[float]:
        q = self._vec(Counter(tokens(query)))
        return [sum(q[w] * d.get(w, 0.0) for w in q) for d in self.vecs]

    def top(self, query: str, k: int) -> list[int]:
        """Indices of the k best matches, least similar first (the best sits next to the query)."""
        s = self.scores(query)
        scored = sorted(range(len(self.vecs)), key=lambda i: (-s[i], i))[:k]
        return list(reversed(scored))
