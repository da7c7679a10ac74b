"""Small statistics for benchmark tables: the Wilson score interval for a success rate."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n` trials (95% for z=1.96).

    Unlike the normal approximation it stays inside [0, 1] and is sensible for 0/n and n/n,
    which small per-family samples hit all the time. n == 0 gives (0.0, 1.0): nothing is known.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(successes: int, n: int) -> float:
    return successes / n if n else 0.0
