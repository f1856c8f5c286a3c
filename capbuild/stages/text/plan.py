"""The plan of a build's text stage: its ordered step configs, and `make_plan`, which orders them.

    clean, unique_key, decontaminate (with --decontaminate: rows showing an evaluation set's images),
    the user's --filter steps (on the source text: what they drop is never translated),
    translate + the MT output checks (with --translate), the user's --post-filter steps.

A plan is picklable and executors receive it whole; its fingerprint is the plan without the
operational fields of its steps, so it depends on nothing but the steps' parameters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.steps import STEPS, Step, load_builtin_steps, parse_spec, parse_step
from capbuild.table import caption_schema, rejected_schema

if TYPE_CHECKING:
    from capbuild.filters.chain import FilterChain

__all__ = ["ALWAYS", "Plan", "TextOptions", "make_plan"]

# The steps every plan starts with, whatever the user asked for.
ALWAYS = ("clean", "unique_key")


@dataclass(frozen=True)
class Plan:
    """The ordered step configs of a build's text stage."""

    steps: tuple[Step, ...]

    @property
    def scores(self) -> dict[str, pa.DataType]:
        """The score columns the steps add, in step order (a column two steps declare, once)."""
        scores: dict[str, pa.DataType] = {}
        for step in self.steps:
            for name, dtype in step.scores.items():
                if scores.setdefault(name, dtype) != dtype:
                    raise ConfigError(f"score column {name!r} is declared with two types ({scores[name]}, {dtype})")
        return scores

    @property
    def schema(self) -> pa.Schema:
        return caption_schema(self.scores)

    @property
    def rejected_schema(self) -> pa.Schema:
        return rejected_schema(self.scores)

    @property
    def labels(self) -> list[str]:
        """Each step's name in counts and reports: its spec, numbered when the plan repeats it."""
        seen: dict[str, int] = {}
        labels = []
        for step in self.steps:
            spec = step.describe()
            seen[spec] = seen.get(spec, 0) + 1
            labels.append(spec if seen[spec] == 1 else f"{spec} #{seen[spec]}")
        return labels

    def chain(self) -> FilterChain:
        """Every step built, in one in-process chain (what a build runs, partition by partition)."""
        from capbuild.filters.chain import FilterChain

        return FilterChain([s.build() for s in self.steps], self.scores, self.labels)

    def config(self) -> list[dict[str, Any]]:
        """Every step's output-deciding record, in order: what the build's fingerprint is made of."""
        return [step.config() for step in self.steps]

    def fingerprint(self) -> str:
        canonical = json.dumps(self.config(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_config(cls, records: Sequence[dict[str, Any]]) -> Plan:
        """The plan a manifest's `config.plan` records (operational fields take their defaults)."""
        load_builtin_steps()
        unknown = [r["name"] for r in records if r["name"] not in STEPS]
        if unknown:
            raise ConfigError(f"the build's plan names steps this capbuild does not know: {', '.join(unknown)}")
        return cls(tuple(STEPS[r["name"]].from_config(r.get("options", {})) for r in records))

    def replace_steps(self, names: Sequence[str], steps: Sequence[Step]) -> Plan:
        """This plan with the steps named `names` removed and `steps` put where the first of them was
        (at the end when there was none)."""
        at = next((i for i, s in enumerate(self.steps) if s.name in names), len(self.steps))
        before = [s for s in self.steps[:at] if s.name not in names]
        after = [s for s in self.steps[at:] if s.name not in names]
        return Plan((*before, *steps, *after))


def make_plan(
    lang: str, filters: Sequence[str], post_filters: Sequence[str] = (), options: TextOptions | None = None
) -> Plan:
    """The plan of a build into language `lang` (the build's --lang): clean and unique_key, then
    `filters` on the source captions, translation and its checks when `options.translate`, then
    `post_filters` on the captions in `lang`."""
    options = options or TextOptions()
    source = options.source_lang(lang)
    given = [s for s in filters if parse_spec(s)[0] not in ALWAYS]
    steps = [parse_step(spec, source, options) for spec in ALWAYS]
    if options.decontaminate:
        from capbuild.filters.decontaminate import Decontaminate

        steps.append(Decontaminate.of(options.decontaminate))
    steps += [parse_step(spec, source, options) for spec in given]
    if options.translate:
        from capbuild.translate.steps import translation_steps

        if lang == options.src_lang:
            raise ConfigError(
                f"--translate: the captions are already in {lang}; give their language with --src-lang "
                "(default en) and the language to translate into with --lang"
            )
        steps += translation_steps(lang, options)
    steps += [parse_step(spec, lang, options) for spec in post_filters]
    return Plan(tuple(steps))
