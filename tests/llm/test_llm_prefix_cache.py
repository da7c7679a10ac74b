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


def test_threads_drop_to_one_only_when_others_fill_the_cpu():
    from capstan.llm.local import threads_for_load

    assert threads_for_load(2, load_1min=0.3, cpus=2) == 2
    assert threads_for_load(2, load_1min=2.9, cpus=2) == 2  # our own two threads alone
    assert threads_for_load(2, load_1min=12.0, cpus=2) == 1
    assert threads_for_load(1, load_1min=0.0, cpus=8) == 1
