"""Peak memory of a process tree: the RSS of a process, its descendants and its session.

A thread samples ``/proc`` every 50 ms and kills the tree when it passes a limit (on RSS). A sum
of RSS counts pages shared between processes once per process (a forked worker's pages shared
copy-on-write with its parent count twice); the tree's PSS (``/proc/PID/smaps_rollup``: each
shared page divided among the processes that map it) counts them once, so both are kept.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass

SAMPLE_SECONDS = 0.05
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024
GB = 1024 * MB


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/PID/stat`` the sampler needs."""

    pid: int
    ppid: int
    session: int
    rss_bytes: int
    name: str = ""


def read_proc_stats() -> list[ProcStat]:
    """One ``/proc/PID/stat`` reading of every process (those that vanish meanwhile are left)."""
    stats = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                text = handle.read().decode(errors="replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        # After "pid (comm) ": state ppid pgrp session ... rss is field 24 of the whole line.
        rss = int(fields[21]) * PAGE_SIZE
        name = text[text.find("(") + 1 : text.rfind(")")]
        stats.append(ProcStat(int(entry), int(fields[1]), int(fields[3]), rss, name))
    return stats


def pss_bytes(pid: int) -> int:
    """The process's proportional set size (``Pss:`` of ``/proc/PID/smaps_rollup``), or 0."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_members(root: int, stats: Sequence[ProcStat]) -> list[ProcStat]:
    """``root`` and its descendants, plus anything left in its session (a re-parented orphan)."""
    children: dict[int, list[ProcStat]] = {}
    for stat in stats:
        children.setdefault(stat.ppid, []).append(stat)
    found = {stat.pid: stat for stat in stats if stat.pid == root or stat.session == root}
    stack, seen = [root], {root}
    while stack:
        for child in children.get(stack.pop(), []):
            if child.pid not in seen:
                seen.add(child.pid)
                found[child.pid] = child
                stack.append(child.pid)
    return list(found.values())


def kill_tree(root: int) -> None:
    """SIGKILL the contender's session (its process group) and any descendant outside it."""
    pids = [stat.pid for stat in tree_members(root, read_proc_stats())]
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(root, signal.SIGKILL)
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class TreeWatch(threading.Thread):
    """Samples the RSS of a process tree every ``interval`` s; kills it past ``limit_bytes``."""

    def __init__(self, root: int, limit_bytes: int | None, interval: float = SAMPLE_SECONDS):
        super().__init__(name=f"tree-watch-{root}", daemon=True)
        self.root = root
        self.limit_bytes = limit_bytes
        self.interval = interval
        self.peak_bytes = 0
        #: The highest sum of PSS over the tree (a shared page counted once in all).
        self.peak_pss_bytes = 0
        self.peak_processes = 0
        #: ``name:MB`` of each process at the peak: a short-lived fork shows up here.
        self.peak_members: list[str] = []
        self.samples = 0
        self.killed = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            if self.killed:
                return
            self._stop_event.wait(self.interval)

    def sample(self) -> None:
        """One reading of the tree; kill it when it is over the limit."""
        members = tree_members(self.root, read_proc_stats())
        total = sum(stat.rss_bytes for stat in members)
        self.peak_pss_bytes = max(self.peak_pss_bytes, sum(pss_bytes(m.pid) for m in members))
        self.samples += 1
        if total > self.peak_bytes:
            self.peak_bytes, self.peak_processes = total, len(members)
            self.peak_members = [f"{m.name}:{m.rss_bytes // MB}" for m in members]
        if self.limit_bytes is not None and total > self.limit_bytes:
            self.killed = True
            kill_tree(self.root)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
