"""Run the GPU benchmark suite: each part in its own process under its own time budget, the report
($OUT/gpu.json, $OUT/gpu.md, $OUT/logs.txt) rewritten after every part so that a run cut short still
returns what it measured. Started by run.sh; `--tiny` is the CPU smoke mode the test suite runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.gpu import embedding, training, translation
from benchmarks.gpu.budget import Budget, run_bounded
from benchmarks.gpu.record import PartRecord
from benchmarks.gpu.report import REFERENCES, render
from benchmarks.gpu.system import environment

PartRunner = Callable[[PartRecord, Budget, Path, bool], None]
# name -> (runner, seconds on the GPU, seconds in the CPU smoke mode)
PARTS: dict[str, tuple[PartRunner, float, float]] = {
    "translation": (translation.run_part, 220, 240),
    "training": (training.run_part, 150, 240),
    "embedding": (embedding.run_part, 60, 120),
}
LOG_TAIL = 200_000  # characters of each part's log kept in logs.txt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="CPU smoke mode: tiny models and data, seconds")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "gpu-out")), help="report folder")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts to run")
    parser.add_argument("--total-seconds", type=float, default=450, help="for all parts together (GPU mode)")
    parser.add_argument("--run-part", help=argparse.SUPPRESS)  # in a part's own process
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_part:
        runner = PARTS[args.run_part][0]
        record = PartRecord(args.work / f"{args.run_part}.json", args.run_part)
        record.save()
        runner(record, Budget(args.seconds), args.work, args.tiny)
        return
    with tempfile.TemporaryDirectory(prefix="capbuild-gpu-") as tmp:
        run_suite(args, args.work or Path(tmp))


def run_suite(args: argparse.Namespace, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.parts.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PARTS))
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    report = {
        "mode": "tiny (CPU smoke run: not a benchmark)" if args.tiny else "gpu",
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "parts": {},
        "references": REFERENCES,
    }
    total = Budget(sum(PARTS[n][2] for n in names) if args.tiny else args.total_seconds)
    started = time.monotonic()
    for name in names:
        seconds = min(PARTS[name][2 if args.tiny else 1], total.left())
        part_work = work / name
        part_work.mkdir(exist_ok=True)
        shared = work / "shared"  # shards and towers, made once for the parts that need them
        shared.mkdir(exist_ok=True)
        print(f"[gpu-bench] {name}: up to {seconds:.0f} s", flush=True)
        argv = [sys.executable, "-m", "benchmarks.gpu.main", "--run-part", name, "--work", str(shared),
                "--seconds", str(seconds), *(["--tiny"] if args.tiny else [])]  # fmt: skip
        finished = run_bounded(argv, seconds + 5, log=part_work / "part.log")
        record = PartRecord.load(shared / f"{name}.json", name)
        if not finished.ok:
            record.data["failed"] = f"the part's process {finished.describe()} (see logs.txt)"
            if not record.data["figures"]:
                record.skip(name, record.data["failed"])
        record.data["seconds"] = round(finished.seconds, 1)
        report["parts"][name] = record.data
        report["seconds"] = round(time.monotonic() - started, 1)
        write_report(report, args.out, shared, part_work)
        print(f"[gpu-bench] {name}: {finished.describe()}; {len(record.data['figures'])} figure(s), "
              f"{len(record.data['skipped'])} skipped", flush=True)  # fmt: skip
    print(f"[gpu-bench] report: {args.out / 'gpu.md'}", flush=True)


def write_report(report: dict, out: Path, shared: Path, part_work: Path) -> None:
    (out / "gpu.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    (out / "gpu.md").write_text(render(report), encoding="utf-8")
    logs = sorted(shared.glob("*.log")) + sorted(part_work.parent.glob("*/part.log"))
    with (out / "logs.txt").open("w", encoding="utf-8") as sink:
        for log in logs:
            text = log.read_text(encoding="utf-8", errors="replace")
            sink.write(f"===== {log.relative_to(shared.parent)} =====\n{text[-LOG_TAIL:]}\n")


if __name__ == "__main__":
    main()
