"""Who holds a port: a service left over from an earlier run (named as such), or any other process.

Every service the stack starts carries ``RIDGELINE_STACK`` in its environment: its name, its
supervisor's pid and start time. On Linux the process listening on a port is found through
/proc/net/tcp{,6} and /proc/<pid>/fd, and that marker read from /proc/<pid>/environ.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = "RIDGELINE_STACK"
PROC = Path("/proc")
LISTEN = "0A"


@dataclass(frozen=True)
class Origin:
    """Which stack started a process."""

    service: str
    supervisor: int
    started: float
    owner: str  # what the user ran, e.g. "`make run`"

    def env(self) -> dict[str, str]:
        return {MARKER: json.dumps({"service": self.service, "supervisor": self.supervisor,
                                    "started": round(self.started), "owner": self.owner})}


def sockets_on(port: int, proc: Path = PROC) -> list[tuple[str, str]]:
    """(state, inode) of every TCP socket whose local port is ``port`` (/proc/net/tcp's hex state: 0A is LISTEN)."""
    found = []
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.append((fields[3], fields[9]))
    return found


def listening_inodes(port: int, proc: Path = PROC) -> set[str]:
    return {inode for state, inode in sockets_on(port, proc) if state == LISTEN}


def pids_listening_on(port: int, proc: Path = PROC) -> list[int]:
    """The processes holding a listening socket on ``port`` (those this user may look into)."""
    sockets = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not sockets:
        return []
    pids = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in sockets for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
        except OSError:  # gone meanwhile, or another user's
            continue
    return sorted(pids)


def origin_of(pid: int, proc: Path = PROC) -> Origin | None:
    try:
        environ = (proc / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    prefix = f"{MARKER}=".encode()
    for item in environ:
        if item.startswith(prefix):
            try:
                data = json.loads(item[len(prefix):])
                return Origin(str(data["service"]), int(data["supervisor"]), float(data["started"]),
                              str(data.get("owner") or "stack"))
            except (ValueError, KeyError, TypeError):
                return None
    return None


def ancestors(pid: int, proc: Path = PROC) -> list[int]:
    chain = []
    while pid > 1 and len(chain) < 64:
        try:
            stat = (proc / str(pid) / "stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


def command_line(pid: int, proc: Path = PROC, limit: int = 80) -> str:
    try:
        words = (proc / str(pid) / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    text = " ".join(w.decode(errors="replace") for w in words)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_holder(port: int, proc: Path = PROC) -> str:
    """A sentence naming what holds ``port`` and how to stop it."""
    pids = pids_listening_on(port, proc)
    if not pids:
        if not listening_inodes(port, proc) and sockets_on(port, proc):
            return ("by no process: the connections of one that just ended are still closing; "
                    "try again in a few seconds")
        return f"by a process this user cannot see (`sudo ss -ltnp 'sport = :{port}'` names it)"
    kill = f"`kill {' '.join(map(str, pids))}`"
    holder = pids[0]
    named = f"pid {holder}" if len(pids) == 1 else f"pids {', '.join(map(str, pids))}"
    origin = origin_of(holder, proc)
    if origin is None:
        return f"by {named} (`{command_line(holder, proc)}`); stop it with {kill}"
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(origin.started))
    if origin.supervisor in ancestors(holder, proc):
        return (f"by {named}, the {origin.service} service of the {origin.owner} still running as pid "
                f"{origin.supervisor} (started {started}); stop that one (Ctrl-C in its terminal, or "
                f"`kill {origin.supervisor}`)")
    return (f"by {named}, the {origin.service} service left over from an earlier {origin.owner} "
            f"(started {started}, its supervisor pid {origin.supervisor} is gone); stop it with {kill}")
