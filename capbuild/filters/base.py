"""The filter interface: one class per filter, one method over a batch, one spec syntax for all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from capbuild.errors import ConfigError


@dataclass(frozen=True)
class FilterContext:
    """What a filter may need to know of the build: the captions' language and extra options
    (backend, model, workers, ...) that the CLI or Python caller passes through."""

    lang: str = "en"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class FilterResult:
    """A filter's verdict on a batch: the batch (possibly with rewritten captions or a new score
    column), whether each row is kept, and the value each row was judged by."""

    table: pa.Table
    keep: list[bool]
    values: list[Any]


class Filter(ABC):
    """Judges a batch of caption-table rows. Subclasses set `name` (the spec name users type) and,
    when the score is kept in the table, `score_column` (declared in capbuild.table.SCORE_FIELDS).

    `stateful` is True for a filter whose verdict on a row depends on rows of earlier batches
    (dedup): executors run it on one process over the partitions in order. Every other filter
    judges each row on its own and may run on any worker. `uses_gpu` (class or instance attribute)
    asks the Ray executor to pin each of the filter's workers to one GPU."""

    name: ClassVar[str]
    score_column: ClassVar[str | None] = None
    # Further score columns a filter adds in its own `apply` (also declared in SCORE_FIELDS).
    extra_score_columns: ClassVar[tuple[str, ...]] = ()
    stateful: ClassVar[bool] = False
    uses_gpu: bool = False

    @classmethod
    def from_spec(cls, arg: str | None, context: FilterContext) -> Filter:
        """Build the filter from the text after '=' in '--filter NAME=ARG' (None when absent)."""
        if arg is not None:
            raise ConfigError(f"filter {cls.name!r} takes no argument (got {cls.name}={arg})")
        return cls()

    @abstractmethod
    def apply(self, batch: pa.Table) -> FilterResult:
        """Judge every row of `batch`."""

    def describe(self) -> str:
        """The filter as a user would write it, for the manifest and the dataset card."""
        return self.name

    def report(self) -> dict[str, Any]:
        """Figures for the manifest beyond kept/dropped (model, cache hits, ...); none by default."""
        return {}


class CaptionFilter(Filter):
    """A filter that scores each row's `caption` and keeps the rows whose score passes."""

    @abstractmethod
    def score(self, captions: list[str]) -> list[Any]:
        """One value per caption, computed over the whole batch at once."""

    @abstractmethod
    def passes(self, value: Any) -> bool:
        """Whether a caption with this value is kept."""

    def apply(self, batch: pa.Table) -> FilterResult:
        return self.result(batch, self.score(batch["caption"].to_pylist()))

    def result(self, batch: pa.Table, values: list[Any]) -> FilterResult:
        """The verdict for scores already computed: the score column added, `passes` applied."""
        if self.score_column is not None:
            from capbuild.table import SCORE_FIELDS

            column = pa.array(values, type=SCORE_FIELDS[self.score_column])
            if self.score_column in batch.column_names:
                batch = batch.drop_columns([self.score_column])
            batch = batch.append_column(self.score_column, column)
        return FilterResult(batch, [self.passes(v) for v in values], values)


class CaptionRewriter(Filter):
    """Rewrites `caption` and every entry of `captions` with `rewrite` (on the rows `rewrites`
    accepts); drops a row whose caption is left empty, and an entry of `captions` left empty."""

    empty_value: ClassVar[str] = "empty"

    @abstractmethod
    def rewrite(self, text: str) -> str:
        """The rewritten text."""

    def rewrites(self, lang: str | None) -> bool:
        """Whether rows in this language are rewritten (all by default)."""
        return True

    def apply(self, batch: pa.Table) -> FilterResult:
        from capbuild.table import with_captions

        columns = (batch[name].to_pylist() for name in ("lang", "caption", "captions"))
        captions, caption_lists = [], []
        for lang, caption, others in zip(*columns, strict=True):
            if self.rewrites(lang):
                caption = self.rewrite(caption or "")
                others = [t for t in (self.rewrite(c) for c in others or []) if t]
            captions.append(caption)
            caption_lists.append(others)
        keep = [bool(c) for c in captions]
        return FilterResult(
            with_captions(batch, captions, caption_lists), keep, ["" if k else self.empty_value for k in keep]
        )


FILTERS: dict[str, type[Filter]] = {}

# Filter options that change how fast a build runs but not what it writes (workers, batch sizes):
# they stay out of the build's fingerprint, so a re-run with other values resumes.
OPERATIONAL_OPTIONS: set[str] = set()


def register_filter(cls: type[Filter]) -> type[Filter]:
    """Class decorator: make a filter available to '--filter NAME[=ARG]'."""
    FILTERS[cls.name] = cls
    return cls


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'len=3..60' -> ('len', '3..60'); 'dedup' -> ('dedup', None)."""
    name, sep, arg = spec.strip().partition("=")
    return name.strip(), (arg.strip() if sep else None)


def make_filter(spec: str, context: FilterContext) -> Filter:
    """Build one filter from its spec, with a clear error for an unknown name."""
    _load_builtin_filters()
    name, arg = parse_spec(spec)
    if name not in FILTERS:
        known = ", ".join(sorted(FILTERS))
        raise ConfigError(f"unknown filter {name!r} in --filter {spec!r}; known filters: {known}")
    return FILTERS[name].from_spec(arg, context)


def chain_specs(specs: list[str]) -> list[str]:
    """The specs of a build's filter chain, normalised: `clean` and `unique_key` first (always),
    then the given filters in order."""
    always = ["clean", "unique_key"]
    given = [parse_spec(spec) for spec in specs]
    return always + [name if arg is None else f"{name}={arg}" for name, arg in given if name not in always]


def make_filters(specs: list[str], context: FilterContext) -> list[Filter]:
    """Build the filter chain of a build (see chain_specs); with `translate` in the options, the
    translation steps follow the user's filters, which judge the source text and save its compute."""
    filters = [make_filter(spec, context) for spec in chain_specs(specs)]
    if context.options.get("translate"):
        from capbuild.translate.filters import translation_filters

        filters += translation_filters(context)
    return filters


def _load_builtin_filters() -> None:
    # Importing the modules registers their filters.
    import capbuild.filters.arabic
    import capbuild.filters.langid
    import capbuild.filters.pos
    import capbuild.filters.text  # noqa: F401
