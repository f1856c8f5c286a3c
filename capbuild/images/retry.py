"""`capbuild retry OUT`: fetch again the images that failed for transient reasons and merge them in.

Transient: timeouts, connection errors, HTTP 408/425/429 and 5xx. Permanent (never retried): 404
and other 4xx, corrupt or oversized images, X-Robots-Tag refusals, missing files. The rows to retry
go through the same image stage into a work folder; its shards with at least one image are appended
to OUT/shards after the last one (their split kept), sizes.json, the manifest (counts before and
after) and the dataset card are updated. A row's outcome is its latest attempt, so a second retry
only retries what is still failing.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.errors import ConfigError
from capbuild.images.failures import failure_reason
from capbuild.images.stage import ImageOptions, run_image_stage, shard_counts
from capbuild.layout import SIZES as SIZES_NAME
from capbuild.layout import WORK, BuildLayout
from capbuild.manifest import require_manifest, save_manifest
from capbuild.options import is_operational
from capbuild.table import part_files, write_part

TRANSIENT_REASONS = frozenset({"timeout", "connection_closed", "connection_error", "connection_refused"})
TRANSIENT_HTTP = frozenset({408, 425, 429})
SHARD_PARQUET = "[0-9][0-9][0-9][0-9][0-9].parquet"
RETRY_WORK = f"{WORK}/retry"


def is_transient(reason: str) -> bool:
    """Whether a failure reason (capbuild.images.failures) may go away on a later attempt."""
    if reason.startswith("http_") and reason[5:].isdigit():
        code = int(reason[5:])
        return code in TRANSIENT_HTTP or code >= 500
    return reason in TRANSIENT_REASONS


def latest_outcomes(shards: Path) -> dict[str, tuple[str, str | None]]:
    """key -> (outcome, source) of each sample's latest attempt ("success" or a failure reason)."""
    outcomes: dict[str, tuple[str, str | None]] = {}
    for path in sorted(shards.glob(SHARD_PARQUET)):
        samples = pq.read_table(path, columns=["key", "status", "error_message", "source"]).to_pydict()
        for key, status, message, source in zip(*samples.values(), strict=True):
            if outcomes.get(key, ("",))[0] == "success":
                continue
            outcomes[key] = ("success" if status == "success" else failure_reason(message), source)
    return outcomes


def summarise(outcomes: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    counts = Counter(outcome for outcome, _ in outcomes.values())
    success = counts.pop("success", 0)
    return {"success": success, "failed": dict(sorted(counts.items()))}


def retry_failed(out: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Retry OUT's transient failures; returns this retry's record (also appended to the manifest)."""
    manifest = require_manifest(out)
    if not manifest["stages"].get("images", {}).get("done"):
        raise ConfigError(f"{out}: the image stage has not finished; re-run the build command to resume it first")
    shards = BuildLayout(out).shards
    outcomes = latest_outcomes(shards)
    before = summarise(outcomes)
    keys = sorted(key for key, (outcome, _) in outcomes.items() if outcome != "success" and is_transient(outcome))
    recorded = manifest.get("operational", {}).get("images", {})
    options = ImageOptions(**{**manifest["config"]["images"], **recorded, **(overrides or {})})
    record: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "attempted": len(keys)}
    work = out / RETRY_WORK
    shutil.rmtree(work, ignore_errors=True)
    appended: list[str] = []
    if keys:
        rows = _select_rows(BuildLayout(out).captions, keys, work / "captions")
        if rows != len(keys):
            raise RuntimeError(f"{len(keys) - rows} failed sample(s) are missing from {out / 'captions'}")
        counts = run_image_stage(work / "captions", work / "out", work / "images", options)
        appended = _append_shards(work / "out" / "shards", shards, counts, manifest)
    after = summarise(latest_outcomes(shards))
    record.update(
        recovered=after["success"] - before["success"],
        appended_shards=appended,
        options={f.name: getattr(options, f.name) for f in fields(options) if is_operational(f)},
        before=before,
        after=after,
    )
    images = manifest["counts"]["images"]
    images.update(success=after["success"], failed=after["failed"], shards=len(_sizes(shards)))
    images["per_source"] = _per_source(latest_outcomes(shards))
    images.setdefault("retries", []).append(record)
    save_manifest(out, manifest)
    shutil.rmtree(work, ignore_errors=True)
    return record


def _select_rows(captions: Path, keys: list[str], target: Path) -> int:
    """Copy the caption-table rows with these keys into target/ parts; returns how many."""
    wanted = pa.array(keys, pa.string())
    count = 0
    for index, part in enumerate(part_files(captions)):
        table = pq.read_table(part)
        selected = table.filter(pc.is_in(table["key"], value_set=wanted))
        if len(selected):
            write_part(selected, target, index)
            count += len(selected)
    return count


def _append_shards(new: Path, shards: Path, counts: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Move the new shards that hold images after OUT's last shard; update sizes.json and splits."""
    sizes = _sizes(shards)
    images = manifest["counts"]["images"]
    next_index = 1 + max((int(name.split(".")[0]) for name in sizes), default=-1)
    appended = []
    for split, names in counts["splits"].items():
        for name in names:
            line = counts["per_shard"][name]
            if line["success"] == 0:
                continue
            stem, target = name.removesuffix(".tar"), f"{next_index:05d}"
            for suffix in (".tar", ".parquet", "_stats.json"):
                shutil.move(new / f"{stem}{suffix}", shards / f"{target}{suffix}")
            sizes[f"{target}.tar"] = line["success"]
            images.setdefault("splits", {}).setdefault(split, []).append(f"{target}.tar")
            images.setdefault("per_shard", {})[f"{target}.tar"] = shard_counts(
                line["attempted"], line["success"], Counter(line["failed"])
            )
            appended.append(f"{target}.tar")
            next_index += 1
    (shards / SIZES_NAME).write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")
    return appended


def _sizes(shards: Path) -> dict[str, int]:
    path = shards / SIZES_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def _per_source(outcomes: dict[str, tuple[str, str | None]]) -> dict[str, dict[str, int]]:
    per_source: dict[str, Counter[str]] = {}
    for outcome, source in outcomes.values():
        per_source.setdefault(source or "", Counter())[outcome] += 1
    return {s: dict(sorted(c.items())) for s, c in sorted(per_source.items())}
