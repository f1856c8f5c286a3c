"""A part's results as a JSON file rewritten after every change, so that whatever a part measured
survives it being killed: figures per measurement, skipped measurements with their reason, notes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class PartRecord:
    """`figures[name]` holds one measurement's numbers; `skipped[name]` says why one was not taken."""

    def __init__(self, path: Path, part: str) -> None:
        self.path = Path(path)
        self.data: dict[str, Any] = {"part": part, "setup": {}, "figures": {}, "skipped": {}, "notes": []}

    @classmethod
    def load(cls, path: Path, part: str) -> PartRecord:
        record = cls(path, part)
        if record.path.is_file():
            record.data.update(json.loads(record.path.read_text(encoding="utf-8")))
        return record

    def setup(self, **facts: Any) -> None:
        """Facts about the inputs (model sizes, caption lengths, ...)."""
        self.data["setup"].update(facts)
        self.save()

    def figure(self, name: str, values: dict[str, Any]) -> None:
        self.data["figures"][name] = values
        self.data["skipped"].pop(name, None)
        self.save()

    def skip(self, name: str, reason: str) -> None:
        self.data["skipped"][name] = reason
        self.save()

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
