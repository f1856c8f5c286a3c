"""Filters from Python, on any Arrow table with a `caption` column or on a list of strings:

from capbuild.filters.api import filter_captions
from capbuild.filters.base import make_filter
propn = make_filter("propn=0.8", "fr")
kept, dropped = filter_captions(propn, ["Lyon, France", "Un chien court sur la plage."])
kept["caption"].to_pylist(), dropped["propn_ratio"].to_pylist()   # (['Un chien ...'], [1.0])
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from capbuild.filters.base import Runner
from capbuild.filters.chain import _as_text


def captions_table(texts: list[str]) -> pa.Table:
    """A table of strings as filters read it: `caption`, and `captions` holding it alone."""
    return pa.table({"caption": pa.array(texts, pa.string()), "captions": pa.array([[t] for t in texts])})


def filter_captions(flt: Runner, data: pa.Table | list[str]) -> tuple[pa.Table, pa.Table]:
    """(kept rows, dropped rows) of `data`, both with the filter's score columns; the dropped rows
    also carry `filter_value`, the value that failed. Other columns of a table pass through."""
    table = captions_table(data) if isinstance(data, list) else data
    result = flt.apply(table)
    keep = pa.array(result.keep, pa.bool_())
    dropped = result.table.filter(pc.invert(keep))
    failed = [_as_text(v) for v, k in zip(result.values, result.keep, strict=True) if not k]
    return result.table.filter(keep), dropped.append_column("filter_value", pa.array(failed, pa.string()))
