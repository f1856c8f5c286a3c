"""The runnable steps of the text stage: one class per step, one method over a batch.

A step's config (capbuild.stages.text.steps) builds its runner; the runner judges or rewrites
batches of caption-table rows. A model-backed runner scores through `score_each`, so that a caption
that breaks the model becomes a rejected row with its error instead of a dead build.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

if TYPE_CHECKING:
    from capbuild.stages.text.options import TextOptions

ERROR_PREFIX = "error: "
ERROR_CHARS = 300


@dataclass
class FilterResult:
    """A step's verdict on a batch: the batch (possibly with rewritten captions or a new score
    column), whether each row is kept, the value each row was judged by, and how many rows were
    dropped because the model failed on them (their value starts with ERROR_PREFIX)."""

    table: pa.Table
    keep: list[bool]
    values: list[Any]
    errors: int = field(default=0)


class Runner(ABC):
    """Judges or rewrites a batch of caption-table rows. `name` is the step's spec name; `scores`
    the columns the runner adds (its config declares the same ones)."""

    name: ClassVar[str]
    scores: ClassVar[dict[str, pa.DataType]] = {}

    @abstractmethod
    def apply(self, batch: pa.Table) -> FilterResult:
        """Judge every row of `batch`."""

    def describe(self) -> str:
        """The step as a user would write it."""
        return self.name

    def report(self) -> dict[str, Any]:
        """Figures for the manifest beyond kept/dropped (model, cache hits, ...); none by default."""
        return {}


def error_value(err: BaseException) -> str:
    """The rejected row's value for a caption the model failed on."""
    return f"{ERROR_PREFIX}{type(err).__name__}: {err}"[:ERROR_CHARS]


def score_each(score: Callable[[list[str]], list[Any]], texts: list[str]) -> tuple[list[Any], dict[int, str]]:
    """`score(texts)`; when the batch raises, each text alone, so that only the texts that still
    raise are lost: (values, None for those), {index: error value}."""
    try:
        return score(texts), {}
    except Exception:
        values: list[Any] = []
        errors: dict[int, str] = {}
        for index, text in enumerate(texts):
            try:
                values.extend(score([text]))
            except Exception as err:
                values.append(None)
                errors[index] = error_value(err)
        return values, errors


class CaptionFilter(Runner):
    """A runner that scores each row's `caption` and keeps the rows whose score passes."""

    score_column: ClassVar[str | None] = None

    @abstractmethod
    def score(self, captions: list[str]) -> list[Any]:
        """One value per caption, computed over the whole batch at once."""

    @abstractmethod
    def passes(self, value: Any) -> bool:
        """Whether a caption with this value is kept."""

    def apply(self, batch: pa.Table) -> FilterResult:
        return self.result(batch, self.score(batch["caption"].to_pylist()))

    def result(self, batch: pa.Table, values: list[Any], errors: dict[int, str] | None = None) -> FilterResult:
        """The verdict for scores already computed: the score column added, `passes` applied; the
        rows in `errors` (index -> error value) dropped with their error."""
        errors = errors or {}
        if self.score_column is not None:
            column = pa.array(values, type=self.scores[self.score_column])
            if self.score_column in batch.column_names:
                batch = batch.drop_columns([self.score_column])
            batch = batch.append_column(self.score_column, column)
        keep = [i not in errors and self.passes(v) for i, v in enumerate(values)]
        shown = [errors.get(i, v) for i, v in enumerate(values)]
        return FilterResult(batch, keep, shown, len(errors))


class CaptionRewriter(Runner):
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


def make_filter(spec: str, lang: str = "en", options: TextOptions | None = None) -> Runner:
    """The runnable step of one spec, from Python: `make_filter("propn=0.8", "fr")`."""
    from capbuild.stages.text.steps import parse_step

    return parse_step(spec, lang, options).build()
