"""Runs steps in order over batches: kept rows go on, dropped rows get the step's name and value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from capbuild.filters.base import Runner
from capbuild.table import caption_schema, conform, rejected_schema

COUNTS = ("in", "kept", "dropped", "errors")


class FilterChain:
    """Applies runners in order; counts rows in, kept, dropped and failed (errors) per step.

    `scores` (default: those of `filters`) sets the output schema; a chain that runs one segment of
    a plan passes the whole plan's, so that its rejected rows keep every score. `labels` name the
    steps in the counts (default: each runner's describe())."""

    def __init__(
        self,
        filters: Sequence[Runner],
        scores: Mapping[str, pa.DataType] | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.filters = list(filters)
        self.scores = dict(scores) if scores is not None else {k: v for f in filters for k, v in f.scores.items()}
        self.schema = caption_schema(self.scores)
        self.rejected_schema = rejected_schema(self.scores)
        self.labels = list(labels) if labels is not None else [f.describe() for f in filters]
        self.counts: dict[str, dict[str, int]] = {label: dict.fromkeys(COUNTS, 0) for label in self.labels}

    def reset_counts(self) -> None:
        for counts in self.counts.values():
            counts.update(dict.fromkeys(COUNTS, 0))

    def apply(self, batch: pa.Table) -> tuple[pa.Table, pa.Table]:
        """Filter one batch; returns (kept rows, rejected rows), both conformed to the build schema."""
        kept, rejected = self.run(batch)
        return conform(kept, self.schema), rejected

    def run(self, batch: pa.Table) -> tuple[pa.Table, pa.Table]:
        """Like `apply`, but the kept rows come back as the last step left them (not conformed),
        exactly what a following step would have been given."""
        rejected: list[pa.Table] = []
        for flt, label in zip(self.filters, self.labels, strict=True):
            counts = self.counts[label]
            counts["in"] += len(batch)
            if len(batch) == 0:
                continue
            result = flt.apply(batch)
            keep = pa.array(result.keep, pa.bool_())
            dropped = result.table.filter(pc.invert(keep))
            if len(dropped):
                values = [_as_text(v) for v, k in zip(result.values, result.keep, strict=True) if not k]
                dropped = dropped.append_column("filter", pa.array([flt.name] * len(dropped), pa.string()))
                dropped = dropped.append_column("filter_value", pa.array(values, pa.string()))
                rejected.append(conform(dropped, self.rejected_schema))
            batch = result.table.filter(keep)
            counts["kept"] += len(batch)
            counts["dropped"] += len(dropped)
            counts["errors"] += result.errors
        rejected_table = pa.concat_tables(rejected) if rejected else self.rejected_schema.empty_table()
        return batch, rejected_table


def _as_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
