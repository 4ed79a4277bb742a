"""The files the review tool writes, and which conversations each holds, so ``forget`` finds them.

``var/review/manifest.json`` lists every file written with ``--output``: its kind and the senders
it holds. Inside a file each conversation's part sits between two marker comments naming the
conversation's key (a hash of its sender id, so no id is repeated in them): ``forget`` deletes a
file that holds only that visitor, and cuts that visitor's parts out of the others, keeping any
edits a designer made to the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

MANIFEST = "manifest.json"


def key(sender: str) -> str:
    return hashlib.sha256(sender.encode("utf-8")).hexdigest()[:16]


# Markers per format: (begin, end) around one conversation's part.
MARKERS = {
    "html": ("<!-- review:begin {key} -->", "<!-- review:end {key} -->"),
    "yaml": ("# review:begin {key}", "# review:end {key}"),
}


def begin(kind: str, sender: str) -> str:
    return MARKERS[kind][0].format(key=key(sender))


def end(kind: str, sender: str) -> str:
    return MARKERS[kind][1].format(key=key(sender))


def cut(text: str, kind: str, sender: str) -> str:
    """``text`` without the parts between ``sender``'s markers (and the line break after each)."""
    pattern = re.escape(begin(kind, sender)) + r".*?" + re.escape(end(kind, sender)) + r"\n?"
    return re.sub(pattern, "", text, flags=re.DOTALL)


def write_atomically(path: Path, text: str) -> None:
    """Whole or not at all: an interrupted write never leaves half a file (of better replies, of the manifest)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class Manifest:
    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / MANIFEST

    def load(self) -> dict[str, dict]:
        if not self.path.is_file():
            return {}
        return json.loads(self.path.read_text(encoding="utf-8")).get("files", {})

    def save(self, files: dict[str, dict]) -> None:
        write_atomically(self.path, json.dumps({"version": 1, "files": files}, indent=2, sort_keys=True) + "\n")

    def record(self, path: Path, kind: str, senders: Iterable[str]) -> None:
        files = self.load()
        files[str(Path(path).resolve())] = {"kind": kind, "senders": sorted(set(senders))}
        self.save(files)

    def forget(self, sender: str) -> tuple[int, int]:
        """Delete or rewrite every listed file holding ``sender``: (files deleted, files rewritten)."""
        files = self.load()
        deleted = rewritten = 0
        for name, entry in list(files.items()):
            if sender not in entry["senders"]:
                continue
            path = Path(name)
            others = [s for s in entry["senders"] if s != sender]
            if not path.exists():
                del files[name]
            elif not others or entry["kind"] not in MARKERS:
                path.unlink()
                del files[name]
                deleted += 1
            else:
                path.write_text(cut(path.read_text(encoding="utf-8"), entry["kind"], sender), encoding="utf-8")
                entry["senders"] = others
                rewritten += 1
        if deleted or rewritten or files != self.load():
            self.save(files)
        return deleted, rewritten
