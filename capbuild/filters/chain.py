"""Runs a filter chain over batches: kept rows go on, dropped rows get the filter's name and value."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from capbuild.filters.base import Filter
from capbuild.table import caption_schema, conform, rejected_schema


class FilterChain:
    """Applies filters in order; counts rows in, kept and dropped per filter."""

    def __init__(self, filters: list[Filter]) -> None:
        self.filters = filters
        self.score_columns = [c for f in filters for c in (f.score_column, *f.extra_score_columns) if c]
        self.schema = caption_schema(self.score_columns)
        self.rejected_schema = rejected_schema(self.score_columns)
        self.counts: dict[str, dict[str, int]] = {f.describe(): {"in": 0, "kept": 0, "dropped": 0} for f in filters}

    def apply(self, batch: pa.Table) -> tuple[pa.Table, pa.Table]:
        """Filter one batch; returns (kept rows, rejected rows), both conformed to the build schema."""
        rejected: list[pa.Table] = []
        for flt in self.filters:
            counts = self.counts[flt.describe()]
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
        rejected_table = pa.concat_tables(rejected) if rejected else self.rejected_schema.empty_table()
        return conform(batch, self.schema), rejected_table


def _as_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
