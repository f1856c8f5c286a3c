"""The text stage's record of each step in the manifest (`counts.text.steps`), in plan order:

    {"name": "propn", "kind": "filter", "spec": "propn=0.8",
     "counts": {"in": 900, "kept": 700, "dropped": 200, "errors": 1}, "report": {...}}

The card, `capbuild info`, `inspect` and `translate run` read these records (never spec strings).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from capbuild.stages.text.steps import Step


@dataclass(frozen=True)
class StepRecord:
    """What one step of a finished text stage did."""

    name: str
    kind: str
    spec: str
    counts: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, step: Step, label: str, counts: dict[str, int], report: dict[str, Any]) -> StepRecord:
        """The record of `step`, named by its label in the plan (its spec, numbered when repeated)."""
        return cls(step.name, step.kind, label, dict(counts), dict(report))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        return cls(data["name"], data["kind"], data["spec"], dict(data.get("counts", {})), dict(data.get("report", {})))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def is_translation(self) -> bool:
        return is_translation_step(self.name)


def is_translation_step(name: str) -> bool:
    """Whether a step is `translate` or one of its MT output checks (named mt_*)."""
    return name == "translate" or name.startswith("mt_")


def step_records(manifest: dict[str, Any]) -> list[StepRecord]:
    """The step records of a build's manifest (none before its text stage has finished)."""
    text = manifest.get("counts", {}).get("text") or {}
    return [StepRecord.from_json(record) for record in text.get("steps", [])]


def plan_steps(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan of a build's config: each step's name, kind, spec, options and score columns."""
    return list(manifest.get("config", {}).get("plan", []))


def counts_by_spec(text: dict[str, Any]) -> dict[str, dict[str, int]]:
    """step spec -> its counts, from the text stage's counts (manifest `counts.text`)."""
    return {record["spec"]: record["counts"] for record in text.get("steps", [])}


def reports_by_spec(text: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """step spec -> its report (model, cache hits, ...), for the steps that made one."""
    return {record["spec"]: record["report"] for record in text.get("steps", []) if record.get("report")}


def plan_specs(manifest: dict[str, Any]) -> list[str]:
    """The specs of a build's plan, in order."""
    return [step["spec"] for step in plan_steps(manifest)]
