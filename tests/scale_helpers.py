"""For the scale tests: a stateless filter that is slow on purpose (so that a test can kill a worker
or a build while it runs) and logs what it does; a COCO file with varied captions; and
`python -m tests.scale_helpers ...`: the capbuild command with that filter registered.

`--filter slow_test=SECONDS:LOGDIR` sleeps SECONDS per batch, drops captions whose length is a
multiple of 5, writes LOGDIR/pids/PID when a process builds it and one line per batch to
LOGDIR/batches.log ("PID FIRST_KEY ROWS"). `--filter kill_once_test=1:DIR` kills the first worker
that reaches its second batch, once (see KillOnceTestFilter).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyarrow as pa

from capbuild.filters.base import FilterResult, Runner
from capbuild.options import opt
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.steps import Filter, register_step


class SlowTestFilter(Runner):
    name = "slow_test"

    def __init__(self, seconds: float, log_dir: Path) -> None:
        self.seconds, self.log_dir = seconds, log_dir
        (log_dir / "pids").mkdir(parents=True, exist_ok=True)
        (log_dir / "pids" / str(os.getpid())).touch()

    def apply(self, batch: pa.Table) -> FilterResult:
        time.sleep(self.seconds)
        lengths = [len(c) for c in batch["caption"].to_pylist()]
        first = batch["key"][0].as_py() if len(batch) else "-"
        with (self.log_dir / "batches.log").open("a") as log:
            log.write(f"{os.getpid()} {first} {len(batch)}\n")
        return FilterResult(batch, [n % 5 != 0 for n in lengths], lengths)


@register_step
@dataclass(frozen=True)
class SlowTest(Filter):
    name: ClassVar[str] = "slow_test"
    seconds: float = field(default=0.0, metadata=opt("Seconds to sleep per batch."))
    log_dir: str = field(default="", metadata=opt("Folder of the pid files and the batch log."))

    @classmethod
    def from_spec(cls, arg: str | None, lang: str, options: TextOptions) -> SlowTest:
        seconds, _, log_dir = (arg or "").partition(":")
        return cls(float(seconds), log_dir)

    def build(self) -> SlowTestFilter:
        return SlowTestFilter(self.seconds, Path(self.log_dir))

    def describe(self) -> str:
        return f"{self.name}={self.seconds}:{self.log_dir}"


@register_step
@dataclass(frozen=True)
class GpuTest(SlowTest):
    """slow_test asking for a GPU: on a cluster without one, the Ray executor gives it CPU actors."""

    name: ClassVar[str] = "gpu_test"

    @property
    def uses_gpu(self) -> bool:
        return True


class KillOnceTestFilter(Runner):
    """Keeps every row. Armed (`kill_once_test=1:DIR`), the first process to reach its second batch
    kills itself with SIGKILL in the middle of the translation segment, once per DIR (it records
    its pid in DIR/killed first): a worker death at a known point, with no timing involved."""

    name = "kill_once_test"

    def __init__(self, armed: bool, folder: Path) -> None:
        self.armed, self.folder, self.batches = armed, folder, 0

    def apply(self, batch: pa.Table) -> FilterResult:
        self.batches += 1
        if self.armed and self.batches == 2:
            try:
                marker = os.open(self.folder / "killed", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                marker = None
            if marker is not None:
                os.write(marker, str(os.getpid()).encode())
                os.close(marker)
                os.kill(os.getpid(), signal.SIGKILL)
        return FilterResult(batch, [True] * len(batch), [""] * len(batch))


@register_step
@dataclass(frozen=True)
class KillOnceTest(Filter):
    name: ClassVar[str] = "kill_once_test"
    armed: bool = field(default=False, metadata=opt("Kill the first worker at its second batch.", operational=True))
    folder: str = field(default="", metadata=opt("Folder of the 'killed' marker.", operational=True))

    @classmethod
    def from_spec(cls, arg: str | None, lang: str, options: TextOptions) -> KillOnceTest:
        armed, _, folder = (arg or "").partition(":")
        return cls(armed == "1", folder)

    def build(self) -> KillOnceTestFilter:
        return KillOnceTestFilter(self.armed, Path(self.folder))


def logged_batches(log_dir: Path) -> list[tuple[int, str, int]]:
    """(pid, first key, rows) of every batch the filter judged, in the order they were logged."""
    path = log_dir / "batches.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(p), k, int(n)) for p, k, n in (line.split() for line in lines)]


COLOURS = ("red", "blue", "green", "black", "white", "yellow")
ANIMALS = ("dog", "cat", "horse", "bird", "cow", "zebra", "sheep")
PLACES = ("on the grass", "in a field", "near a road", "by the sea", "under a tree")


def write_varied_coco(path: Path, images: int) -> Path:
    """A COCO captions file whose captions exercise clean, len and dedup: repeated captions (with
    other case and punctuation), one-word captions, one left blank by cleaning, mojibake and extra whitespace."""

    def base(i: int) -> str:
        return f"a {COLOURS[i % 6]} {ANIMALS[i % 7]} {PLACES[i % 5]}"

    entries, annotations = [], []
    for i in range(1, images + 1):
        caption = base(i)
        if i % 8 == 0:
            caption = base(i - 1).upper() + "!"
        elif i % 11 == 0:
            caption = ANIMALS[i % 7]
        elif i % 19 == 0:
            caption = f"{base(1).capitalize()}."  # a duplicate partitions away from its first
        elif i % 17 == 0:
            caption = f"  caf\u00c3\u00a9 {caption}  "
        elif i % 23 == 0:
            caption = "&nbsp;"
        entries.append({"id": i, "file_name": f"{i}.jpg", "coco_url": f"http://127.0.0.1:9/{i}.jpg"})
        annotations.append({"id": i, "image_id": i, "caption": caption})
    path.write_text(json.dumps({"images": entries, "annotations": annotations}))
    return path


if __name__ == "__main__":
    import capbuild.stages.text.stage
    from capbuild.cli import main

    capbuild.stages.text.stage.TEXT_BATCH_ROWS = int(os.environ.get("CAPBUILD_TEST_BATCH_ROWS", "20000"))
    sys.argv[0] = "capbuild"
    main()
