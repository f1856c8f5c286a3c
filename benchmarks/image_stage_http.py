"""The image stage over HTTP: raw img2dataset CLI against `capbuild pairs` on the same URLs and options.

A threaded HTTP server on 127.0.0.1 (a fixed pool of handler threads; it shuts itself down after
--server-seconds) serves N procedural 400x300 JPEGs. Each round runs, in an order rotated per round:

- raw:      the img2dataset CLI;
- capbuild: `capbuild pairs ... --per-host-rps 0` (pacing off);
- paced:    the same with --per-host-rps 1000000 (pacing on, a rate no host reaches);
- before:   with --baseline SRC, `capbuild pairs ... --per-host-rps 0` run from another source tree
            (e.g. `git archive OLD capbuild | tar -x -C SRC`), so before/after share the run.

All runs use 2 processes x 8 threads, image size 256, border, 1,000 samples per shard (flags below).
Then one instrumented `capbuild pairs` run per source tree breaks its time down (start-up, text
stage, img2dataset proper, shard finalise and rewrite, manifest, card), and a client-side loop
measures the CPU cost per request of capbuild's download wrapper against img2dataset's own
`download_image`. With --scheme file the images are files read through file:// URLs (no server).

    .venv/bin/python benchmarks/image_stage_http.py --images 6000 --rounds 3 --baseline /tmp/capbuild-before
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import resource
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
UNREACHED_RPS = 1_000_000
WORDS = ("a", "man", "woman", "dog", "cat", "red", "blue", "small", "large", "sitting", "standing", "on", "near", "the",
         "street", "table", "field")  # fmt: skip


def procedural_jpeg(index: int, size: tuple[int, int] = (400, 300)) -> bytes:
    """A distinct photo-like JPEG: one of 16 smooth colour-wave textures with noise, shifted and
    tinted by `index` (cheap enough to make thousands on a busy machine)."""
    texture = _texture(index % 16, size)
    tint = np.array([(index * 37) % 64, (index * 59) % 64, (index * 83) % 64], dtype=np.int16)
    pixels = np.roll(texture, (index * 7) % size[1], axis=0) + tint
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@functools.cache
def _texture(seed: int, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    fx, fy = rng.uniform(0.01, 0.08, 2).tolist()
    base = [np.sin(x * fx + seed + c) * np.cos(y * fy + c) for c in (0.0, 2.0, 4.0)]
    pixels = np.stack([96 + 90 * b for b in base], axis=-1) + rng.normal(0, 12, (height, width, 3))
    return pixels.astype(np.int16)


def caption(index: int) -> str:
    rng = np.random.default_rng(10_000_000 + index)
    return " ".join(WORDS[i] for i in rng.integers(0, len(WORDS), 8))


class PoolHTTPServer(HTTPServer):
    """An HTTPServer whose requests run on a fixed pool of threads (bounded, unlike ThreadingHTTPServer)."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], threads: int) -> None:
        super().__init__(address, handler)
        self.pool = ThreadPoolExecutor(max_workers=threads)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._handle, request, client_address)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a client that hung up: logged, not fatal
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def serve_images(images: list[bytes], threads: int, seconds: float) -> Iterator[str]:
    """Serve images[i] at /i.jpg on 127.0.0.1; the server stops after `seconds` even if left running."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/").removesuffix(".jpg")
            if not name.isdigit() or int(name) >= len(images):
                self.send_error(404)
                return
            body = images[int(name)]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    socketserver.TCPServer.request_queue_size = 128
    server = PoolHTTPServer(("127.0.0.1", 0), Handler, threads)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopper = threading.Timer(seconds, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()


def write_urls(path: Path, urls: list[str]) -> Path:
    lines = ["url\tcaption", *(f"{url}\t{caption(i)}" for i, url in enumerate(urls))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def env_for(source: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(source), "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}


def raw_command(urls: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """img2dataset's CLI with the options capbuild passes it."""
    return [
        str(BIN / "img2dataset"),
        f"--url_list={urls}",
        "--input_format=tsv",
        "--url_col=url",
        "--caption_col=caption",
        "--output_format=webdataset",
        f"--output_folder={out}",
        f"--processes_count={args.processes}",
        f"--thread_count={args.threads}",
        "--image_size=256",
        "--resize_mode=border",
        "--encode_quality=95",
        f"--number_sample_per_shard={args.shard_size}",
        "--max_image_area=89478485",
        "--timeout=10",
        "--extract_exif=False",
        "--enable_wandb=False",
    ]


def capbuild_command(urls: Path, out: Path, args: argparse.Namespace, rps: float) -> list[str]:
    return [
        "pairs",
        "--input",
        str(urls),
        "--url-col",
        "url",
        "--caption-col",
        "caption",
        "--out",
        str(out),
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--image-size",
        "256",
        "--resize-mode",
        "border",
        "--shard-size",
        str(args.shard_size),
        "--per-host-rps",
        str(rps),
    ]


def timed_run(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Wall seconds, and CPU seconds (user + system) of the command and every process it waited for."""
    started, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("wb") as f:
        # cwd: not a checkout, whose capbuild/ `python -m` would import ahead of PYTHONPATH
        result = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=log.parent, check=False)
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed ({result.returncode}); see {log}:\n{log.read_text()[-2000:]}")
    return seconds, after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime


def raw_successes(out: Path) -> int:
    return sum(json.loads(p.read_text())["successes"] for p in out.glob("*_stats.json"))


def run_contender(name: str, urls: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """One timed run: its wall and CPU seconds and the image stage's wall seconds (for raw: all of it)."""
    out = work / f"out-{name}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    if name == "raw":
        seconds, cpu = timed_run(raw_command(urls, out, args), env_for(ROOT), work / f"{name}.log")
        successes = raw_successes(out)
        stage = seconds
    else:
        source = args.baseline if name == "before" else ROOT
        rps = UNREACHED_RPS if name == "paced" else 0
        command = [sys.executable, "-m", "capbuild", *capbuild_command(urls, out, args, rps)]
        seconds, cpu = timed_run(command, env_for(source), work / f"{name}.log")
        manifest = json.loads((out / "manifest.json").read_text())
        successes = manifest["counts"]["images"]["success"]
        stage = manifest["stages"]["images"]["seconds"]
    if successes != args.images:
        raise RuntimeError(f"{name}: {successes} images of {args.images} fetched; see {work / name}.log")
    return {"wall": seconds, "stage": stage, "cpu": cpu}


def breakdown_child(args: argparse.Namespace) -> None:
    """In a fresh interpreter: run `capbuild pairs` in-process with timers around its parts; print JSON."""
    started = time.perf_counter()
    import capbuild.build as build
    import capbuild.images.stage as stage
    from capbuild.cli import app

    imported = time.perf_counter() - started
    timings: dict[str, float] = {}
    targets = {
        build: ("run_text_stage", "save_manifest", "write_card"),
        stage: ("_write_inputs", "_run_img2dataset", "_finalise", "_rewrite_shard", "rewrite_shard"),
    }
    for module, names in targets.items():
        for name in names:
            if hasattr(module, name):
                setattr(module, name, _timer(getattr(module, name), name, timings))
    run_started = time.perf_counter()
    app(capbuild_command(args.urls, args.out, args, args.rps), standalone_mode=False)
    timings["run"] = time.perf_counter() - run_started
    timings["import capbuild.cli"] = imported
    print(json.dumps(timings))


def _timer(function: Any, name: str, timings: dict[str, float]) -> Any:
    def timed(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*a, **k)
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - started

    return timed


def wrapper_child(args: argparse.Namespace) -> None:
    """CPU seconds per request, client side: img2dataset's download_image against capbuild's wrapper
    (pacing off, then on at an unreached rate), args.threads threads, the same URLs; prints JSON."""
    import img2dataset.downloader as downloader

    from capbuild.images import polite

    original = downloader.download_image
    urls = [line.split("\t")[0] for line in args.urls.read_text().splitlines()[1:]][: args.requests]
    rows = list(enumerate(urls))
    directives = {"noai", "noimageai", "noindex", "noimageindex"}
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as pacing:
        for name, rps in (("img2dataset", None), ("capbuild", 0.0), ("capbuild-paced", float(UNREACHED_RPS))):
            if rps is None:
                function = original
            else:
                polite.install(rps or None, Path(pacing) / name)
                function = polite.polite_download_image
            cpu = time.process_time()
            with ThreadPool(args.threads) as pool:
                fetched = pool.map(lambda row, f=function: f(row, 10, None, directives), rows)
            results[name] = (time.process_time() - cpu) / len(rows) * 1e6
            if any(error for _, _, error in fetched):
                raise RuntimeError(f"{name}: a request failed: {next(e for _, _, e in fetched if e)}")
    print(json.dumps(results))


def child_json(mode: str, source: Path, urls: Path, out: Path, args: argparse.Namespace, extra: list[str]) -> Any:
    work = urls.parent
    command = [sys.executable, __file__, mode, "--urls", str(urls), "--out", str(out), *extra]
    command += ["--processes", str(args.processes), "--threads", str(args.threads)]
    command += ["--shard-size", str(args.shard_size)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env_for(source), cwd=work, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def breakdown(source: Path, urls: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    out = work / f"out-breakdown-{source.name}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    timings, wall = child_json("--breakdown-child", source, urls, out, args, ["--rps", "0"])
    parts = {
        "start-up (interpreter, imports, CLI)": wall - timings["run"],
        "  of which import capbuild.cli": timings["import capbuild.cli"],
        "text stage": timings.get("run_text_stage", 0.0),
        "image inputs (per-split parquet)": timings.get("_write_inputs", 0.0),
        "img2dataset proper (subprocess)": timings.get("_run_img2dataset", 0.0),
        "shard finalise (links/rewrite, counts, sizes.json)": timings.get("_finalise", 0.0),
        "  of which post-pass shard rewrite": timings.get("_rewrite_shard", 0.0) + timings.get("rewrite_shard", 0.0),
        "manifest writes": timings.get("save_manifest", 0.0),
        "dataset card": timings.get("write_card", 0.0),
    }
    accounted = sum(v for k, v in parts.items() if not k.startswith("  "))
    parts["other (builder setup, fingerprint, cleanup)"] = wall - accounted
    parts["whole command"] = wall
    return parts


def median_line(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--baseline", type=Path, help="another capbuild source tree to run as 'before'")
    parser.add_argument("--scheme", choices=("http", "file"), default="http")
    parser.add_argument("--requests", type=int, default=2000, help="requests of the per-request wrapper loop")
    parser.add_argument("--server-threads", type=int, default=32)
    parser.add_argument("--server-seconds", type=float, default=3600.0, help="the server stops after this")
    parser.add_argument("--skip-breakdown", action="store_true")
    parser.add_argument("--baseline-breakdown", action="store_true", help="also break down the --baseline run")
    # Internal: the child modes.
    parser.add_argument("--breakdown-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wrapper-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rps", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown_child:
        breakdown_child(args)
        return
    if args.wrapper_child:
        wrapper_child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        images = [procedural_jpeg(i) for i in range(args.images)]
        print(f"{args.images} procedural 400x300 JPEGs ({sum(map(len, images)) / len(images) / 1024:.1f} KiB mean) "
              f"made in {time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
        if args.scheme == "file":
            (work / "site").mkdir()
            for i, body in enumerate(images):
                (work / "site" / f"{i}.jpg").write_bytes(body)
            report(args, work, f"file://{work / 'site'}")
        else:
            with serve_images(images, args.server_threads, args.server_seconds) as base:
                report(args, work, base)


def report(args: argparse.Namespace, work: Path, base: str) -> None:
    urls = write_urls(work / "urls.tsv", [f"{base}/{i}.jpg" for i in range(args.images)])
    names = ["raw", "capbuild", "paced"] + (["before"] if args.baseline else [])
    walls: dict[str, list[float]] = {name: [] for name in names}
    stages: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        order = names[round_index % len(names) :] + names[: round_index % len(names)]
        for name in order:
            figures = run_contender(name, urls, work, args)
            walls[name].append(figures["wall"])
            stages[name].append(figures["stage"])
            cpus[name].append(figures["cpu"])
            print(f"round {round_index + 1} {name}: {figures['wall']:.2f} s (image stage {figures['stage']:.2f} s), "
                  f"{figures['cpu']:.2f} CPU s", flush=True)  # fmt: skip
    raw, raw_cpu = statistics.median(walls["raw"]), statistics.median(cpus["raw"])
    print(f"\n{args.images} images, {args.scheme}, {args.processes} processes x {args.threads} threads, "
          f"{args.shard_size} per shard, {args.rounds} rounds interleaved (median, min-max)\n")  # fmt: skip
    print("| run | whole command | vs raw | image stage | vs raw | CPU, all processes | vs raw |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        stage, cpu = statistics.median(stages[name]), statistics.median(cpus[name])
        wall = statistics.median(walls[name])
        print(f"| {name} | {median_line(walls[name])} | {wall / raw:.3f}x | {median_line(stages[name])} "
              f"| {stage / raw:.3f}x | {median_line(cpus[name])} | {cpu / raw_cpu:.3f}x |")  # fmt: skip
    if args.skip_breakdown:
        return
    sources = [("after", ROOT)] + ([("before", args.baseline)] if args.baseline and args.baseline_breakdown else [])
    parts = {label: breakdown(source, urls, work, args) for label, source in sources}
    print(f"\nBreakdown of one `capbuild pairs --per-host-rps 0` run each (seconds)\n\n| part | {' | '.join(parts)} |")
    print("|---|" + "---|" * len(parts))
    for key in next(iter(parts.values())):
        print(f"| {key} | " + " | ".join(f"{p[key]:.2f}" for p in parts.values()) + " |")
    if args.scheme == "http":
        wrapper = {label: child_json("--wrapper-child", s, urls, work, args, ["--requests", str(args.requests)])[0]
                   for label, s in sources}  # fmt: skip
        print(f"\nClient CPU per request, {args.requests} requests on {args.threads} threads (microseconds)\n")
        print(f"| download function | {' | '.join(wrapper)} |\n|---|" + "---|" * len(wrapper))
        for key in next(iter(wrapper.values())):
            print(f"| {key} | " + " | ".join(f"{w[key]:.0f}" for w in wrapper.values()) + " |")


if __name__ == "__main__":
    main()
