"""Run a command as a child process and measure it: wall time and the peak memory of its tree.

The peak is taken two ways. ``wait4`` gives the kernel's exact ru_maxrss, but only of the
largest single process of the tree; a poller with worker processes holds memory in several at
once, so a thread also samples the whole tree (the child and all its descendants, through
/proc) and sums each process's RSS and PSS. RSS counts pages shared between processes (the
libraries, a fork server's preloaded modules) once per process; PSS splits them among the
sharers, so the summed PSS is what the tree really costs the machine.

The command is started by a small launcher process rather than by this one: Linux carries a
process's peak RSS across exec, so a child forked from this process (which has imported monitor
and SQLAlchemy) would report this process's size as its own peak if that were larger.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.05
_PROC = Path("/proc")
# Run with ``python -S -c``: forks the command, waits for it, writes its figures as JSON.
_LAUNCHER = """
import json, os, sys, time
out, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(out, "w") as handle:
    json.dump({"seconds": seconds, "maxrss": usage.ru_maxrss}, handle)
sys.exit(os.waitstatus_to_exitcode(status) & 255)
"""


@dataclass(frozen=True, slots=True)
class Measured:
    """How one run of a command went."""

    returncode: int
    seconds: float
    peak_rss_mb: float  # summed over the tree, at least the largest process's ru_maxrss
    peak_pss_mb: float | None  # summed over the tree; None where /proc cannot say
    processes: int  # the most processes the tree had at once
    stderr: str  # the end of what it wrote on stderr
    # CPU time (user and system) of the whole tree, as sampled (None where /proc cannot say).
    cpu_seconds: float | None = None


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (threads' children included)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            tasks = list((_PROC / str(current) / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                pending.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def _memory_kb(pid: int) -> tuple[int, int | None]:
    """RSS and PSS of one process in KB (PSS None when smaps_rollup is not there); 0 if gone."""
    try:
        text = (_PROC / str(pid) / "smaps_rollup").read_text()
    except FileNotFoundError:
        text = ""
    except OSError:
        return 0, None
    rss = pss = None
    for line in text.splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    if rss is not None:
        return rss, pss
    try:
        status = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return 0, None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]), None
    return 0, None


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU time a process has used so far; None when it is gone."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the command's closing parenthesis.
    return (int(fields[11]) + int(fields[12])) / ticks


class _Sampler(threading.Thread):
    """Sums the memory of a process tree every SAMPLE_SECONDS, keeping the peaks."""

    def __init__(self, launcher: int) -> None:
        super().__init__(daemon=True)
        self.launcher = launcher
        self.peak_rss_kb = 0
        self.peak_pss_kb: int | None = None
        self.processes = 0
        # The CPU time last seen of each process of the tree (the last sample's share is lost).
        self.cpu: dict[int, float] = {}
        self.stopped = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        if not _PROC.is_dir():
            return
        while not self.stopped.is_set():
            pids = _descendants(self.launcher)[1:]
            rss_total, pss_total, pss_known = 0, 0, True
            for pid in pids:
                used = _cpu_seconds(pid)
                if used is not None:
                    self.cpu[pid] = max(self.cpu.get(pid, 0.0), used)
                rss, pss = _memory_kb(pid)
                rss_total += rss
                pss_total += pss or 0
                pss_known = pss_known and pss is not None
            self.peak_rss_kb = max(self.peak_rss_kb, rss_total)
            if pss_known:
                self.peak_pss_kb = max(self.peak_pss_kb or 0, pss_total)
            self.processes = max(self.processes, len(pids))
            self.stopped.wait(SAMPLE_SECONDS)


def _maxrss_kb(rusage_maxrss: int) -> int:
    # ru_maxrss is in bytes on macOS, in KB elsewhere.
    return rusage_maxrss // 1024 if sys.platform == "darwin" else rusage_maxrss


def measure(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Measured:
    """Run ``command`` to its end (stdout dropped); its wall time and peak memory."""
    with tempfile.TemporaryDirectory(prefix="monitor-bench-measure-") as directory:
        figures_file = Path(directory) / "figures.json"
        errors_file = Path(directory) / "stderr"
        launcher = [sys.executable, "-S", "-c", _LAUNCHER, str(figures_file), *command]
        with errors_file.open("wb") as errors:
            process = subprocess.Popen(
                launcher,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
            sampler = _Sampler(process.pid)
            sampler.start()
            returncode = process.wait()
            sampler.stopped.set()
            sampler.join()
        tail = errors_file.read_bytes()[-4000:].decode("utf-8", "replace")
        try:
            figures = json.loads(figures_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Measured(returncode or 1, 0.0, 0.0, None, 0, tail)
    rss_kb = max(sampler.peak_rss_kb, _maxrss_kb(int(figures["maxrss"])))
    pss_kb = sampler.peak_pss_kb
    return Measured(
        returncode=returncode,
        seconds=float(figures["seconds"]),
        peak_rss_mb=rss_kb / 1024,
        peak_pss_mb=pss_kb / 1024 if pss_kb is not None else None,
        processes=max(1, sampler.processes),
        stderr=tail,
        cpu_seconds=sum(sampler.cpu.values()) if sampler.cpu else None,
    )
