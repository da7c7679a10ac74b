"""The on-disk prefix state cache without a model: file naming and least-recently-used eviction."""

from __future__ import annotations

import os

from capstan.llm.prefix_cache import PrefixStateCache


def test_path_depends_on_every_token(tmp_path):
    cache = PrefixStateCache(tmp_path, "ns")
    assert cache.path_for([1, 2, 3]) != cache.path_for([1, 2, 4])
    assert cache.path_for([12, 3]) != cache.path_for([1, 23])
    assert cache.path_for([1, 2, 3]).parent == tmp_path / "ns"


def test_short_prefixes_are_not_worth_a_file(tmp_path):
    cache = PrefixStateCache(tmp_path, "ns", min_tokens=32)
    assert not cache.worth_caching(list(range(31))) and cache.worth_caching(list(range(32)))


def test_evicts_least_recently_used_beyond_the_budget(tmp_path):
    cache = PrefixStateCache(tmp_path, "ns", max_bytes=250)
    cache.directory.mkdir(parents=True)
    for i, name in enumerate(["old", "mid", "new"]):
        path = cache.directory / f"{name}.state"
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    cache.evict()
    assert sorted(p.stem for p in cache.directory.glob("*.state")) == ["mid", "new"]
