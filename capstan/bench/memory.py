"""Memory as the machine sees it: proportional set size (PSS) of a process tree, and of one world."""

from __future__ import annotations

import os


def pss_mb(root_pid: int | None = None) -> float:
    """PSS of a process and all its descendants, in MB (Linux smaps_rollup). Shared pages count
    once across the tree, split among the processes mapping them."""
    root = root_pid or os.getpid()
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as f:
                total_kb += sum(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return round(total_kb / 1024, 1)


def world_mb(worlds: int = 4) -> float:
    """What one more simulated world (a session's) adds to this process: the mean PSS growth over
    `worlds` worlds built after a first one (which also pays for what worlds share)."""
    from capstan.sim import World

    spec = {"objects": ["red block", "green block", "blue bowl"], "seed": 0}
    built = [World(spec)]
    try:
        before = pss_mb()
        built += [World({**spec, "seed": k}) for k in range(1, worlds + 1)]
        return round((pss_mb() - before) / worlds, 1)
    finally:
        for w in built:
            w.close()
