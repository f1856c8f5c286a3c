"""The embedding pass: DataLoader workers stream each shard's tar, decode every image once into a
tensor, hash it (pHash) and resize it; the model embeds each batch's images and captions on every
GPU, or, on the CPU, in the workers themselves (forked with the model loaded). Each shard's result
is written atomically to embeddings/NNNNN.parquet:

    key, phash, image_embedding, text_embedding, text_orig_embedding (L2-normalised, float16 default)

with the model's name and fingerprint and the pHash method in the file's metadata, so a finished
shard is reused by a re-run (or a later run with the same model) and a killed pass resumes at the
first unfinished shard.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text
from torch.utils.data import DataLoader, IterableDataset, default_collate, get_worker_info

from capbuild.atomic import atomic_path
from capbuild.cores import usable_cores
from capbuild.imagefilters.hashing import PHASH_METHOD, phash_hexes, phash_thumbnail
from capbuild.images.decode import UndecodableImage, decode_rgb, jpeg_decoder
from capbuild.images.shards import IndexedSample, read_members, sample_index
from capbuild.models.dual_encoder import DualEncoder
from capbuild.models.transforms import ImageTransform

IMAGE_FIELDS = ("jpg", "jpeg", "png", "webp")
READ_FIELDS = frozenset({*IMAGE_FIELDS, "txt", "json"})
METADATA_KEY = b"capbuild"
EMBEDDING_COLUMNS = ("image_embedding", "text_embedding")
ORIG_COLUMN = "text_orig_embedding"
DTYPES = {"float16": np.float16, "float32": np.float32}
# Images a model on the CPU normalises and embeds at a time: pieces of a batch whose float pixels stay
# in the cache (16 at 224 px: 9.6 MB). Whole batches of 64 (38 MB) kept the loaders waiting on memory:
# 4 % more CPU time alone on one core, 12 % longer passes with two loaders on 2 cores.
CPU_CHUNK = 16
# Dictionaries and statistics only for the strings: tried on the float vectors, they cost 2.5x the write.
WRITE_OPTIONS: dict[str, Any] = {"use_dictionary": ["key", "phash"], "write_statistics": ["key", "phash"]}


@dataclass
class ShardStream(IterableDataset):
    """Batches of decoded samples of the shards, in each worker the positions p with
    p % workers == worker id, read by seeking to their members (the shards' indexes are made once,
    in the main process); after a shard, every worker yields a batch marked `last`."""

    shards: list[Path]
    indexes: list[list[IndexedSample]]
    transform: ImageTransform | None
    batch_size: int
    # Set: each worker embeds its own batches with its (forked) copy of this CPU model.
    embedding: BatchEmbedding | None = None

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for shard_no, (path, index) in enumerate(zip(self.shards, self.indexes, strict=True)):
            items: list[dict[str, Any]] = []
            with path.open("rb") as handle:
                for position in range(worker, len(index), workers):
                    key, members = index[position]
                    items.append(self._prepare(position, key, read_members(handle, members, READ_FIELDS)))
                    if len(items) == self.batch_size:
                        yield self._batch(shard_no, items, last=False)
                        items = []
            yield self._batch(shard_no, items, last=True)

    def _prepare(self, position: int, key: str, fields: dict[str, bytes]) -> dict[str, Any]:
        meta = json.loads(fields["json"]) if "json" in fields else {}
        caption = fields["txt"].decode("utf-8") if "txt" in fields else str(meta.get("caption") or "")
        item: dict[str, Any] = {
            "position": position,
            "key": key,
            "caption": caption,
            "orig": meta.get("caption_orig") or None,
            "thumbnail": None,
            "pixels": None,
        }
        data = next((fields[f] for f in IMAGE_FIELDS if f in fields), None)
        try:
            pixels = decode_rgb(data) if data is not None else None
        except UndecodableImage:
            pixels = None  # counted as undecodable; the sample keeps no score and is never judged
        if pixels is not None:
            item["thumbnail"] = phash_thumbnail(pixels)
            if self.transform is not None:
                item["pixels"] = self.transform.resize_uint8(pixels)
        return item

    def _batch(self, shard_no: int, items: list[dict[str, Any]], last: bool) -> dict[str, Any]:
        batch = {name: [item[name] for item in items] for name in ("position", "key", "caption", "orig")}
        hashes = iter(phash_hexes([item["thumbnail"] for item in items if item["thumbnail"] is not None]))
        batch["phash"] = [next(hashes) if item["thumbnail"] is not None else None for item in items]
        decoded = [item["pixels"] for item in items if item["pixels"] is not None]
        if self.embedding is not None:  # only the embeddings go to the main process
            batch["embedded"] = self.embedding.embed(self.embedding.encoders[0], {**batch, "pixels": decoded or None})
            batch["pixels"] = None
        else:
            batch["pixels"] = default_collate(decoded) if decoded else None  # in a worker: stacked into shared memory
        return {**batch, "shard": shard_no, "last": last}


# Loader processes the default gives at most: each keeps up with ~450 images/s on one core at 256 px.
MAX_DEFAULT_WORKERS = 32


@dataclass
class PassOptions:
    """How the pass runs (none of it changes the result); `workers` None: `loader_workers` decides."""

    batch_size: int = 256
    workers: int | None = None
    dtype: str = "float16"


def loader_workers(requested: int | None, encoders: list[DualEncoder]) -> int:
    """The loader processes of a pass in this process: as requested; else every core when the loaders
    embed the images themselves (`embeds_in_workers`), each on one thread; else `default_loader_workers`."""
    if requested is not None:
        return max(0, requested)
    if embeds_in_workers(encoders):
        return default_loader_workers(None, usable_cores())
    on_gpu = any(encoder.device.type != "cpu" for encoder in encoders) if encoders else None
    return default_loader_workers(on_gpu, usable_cores())


def embeds_in_workers(encoders: list[DualEncoder]) -> bool:
    """Whether loader workers embed their batches themselves: one model, on the CPU, where workers
    can be forked (they inherit it loaded). N one-thread copies of a CPU model beat one on N threads
    beside N loaders, the pixels never cross to the main process, and the main process, left with
    writing the files, keeps up with many loaders."""
    single_cpu = len(encoders) == 1 and encoders[0].device.type == "cpu"
    return single_cpu and "fork" in multiprocessing.get_all_start_methods()


def default_loader_workers(model_on_gpu: bool | None, cores: int) -> int:
    """Loaders beside a model on a GPU: every core but the one feeding the GPUs; beside a model on
    the CPU: 2 (its own threads need the other cores); with no model beside them (None: only pHashes,
    or loaders that embed): every core."""
    if model_on_gpu is False:
        return max(1, min(2, cores))
    spare = cores - 1 if model_on_gpu else cores
    return max(1, min(spare, MAX_DEFAULT_WORKERS))


@dataclass
class ShardResult:
    """One shard's samples as they arrive from the workers (any order)."""

    positions: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    origs: list[str | None] = field(default_factory=list)
    phashes: list[str | None] = field(default_factory=list)
    images: list[np.ndarray] = field(default_factory=list)  # one row per decoded sample, in arrival order
    texts: list[np.ndarray] = field(default_factory=list)  # one row per sample, in arrival order
    orig_texts: list[np.ndarray] = field(default_factory=list)  # as texts, where the pass needs them
    workers_done: int = 0


def embedding_path(folder: Path, shard: Path) -> Path:
    return folder / f"{shard.stem}.parquet"


ShardIndexes = dict[Path, list[IndexedSample]]


def index_shards(shards: list[Path]) -> ShardIndexes:
    """Each shard's samples in order (its member list, no data read). The stage makes them once a run
    and hands them to the pass; a Ray actor indexes the one shard it is given."""
    return {shard: sample_index(shard) for shard in shards}


def index_keys(index: list[IndexedSample]) -> list[str]:
    """A shard's sample keys, in order."""
    return [key for key, _ in index]


def reusable(path: Path, keys: list[str], fingerprint: str | None, needs_orig: bool) -> bool:
    """Whether a saved shard file covers these keys with what this run needs: pHashes made by this
    PHASH_METHOD, and the embeddings of the model with this fingerprint (None: pHashes only)."""
    if not path.is_file():
        return False
    schema = pq.read_schema(path)
    meta = json.loads((schema.metadata or {}).get(METADATA_KEY, b"{}"))
    if meta.get("phash_method") != PHASH_METHOD:
        return False
    needed = ["key", "phash"]
    if fingerprint is not None:
        if meta.get("fingerprint") != fingerprint:
            return False
        needed += [*EMBEDDING_COLUMNS, *([ORIG_COLUMN] if needs_orig else [])]
    if any(name not in schema.names for name in needed):
        return False
    saved = set(pq.read_table(path, columns=["key"])["key"].to_pylist())
    return saved.issuperset(keys)


def pending_shards(indexes: ShardIndexes, folder: Path, fingerprint: str | None, needs_orig: bool) -> list[Path]:
    """The shards whose embeddings file is missing or does not serve this run."""
    return [
        shard
        for shard, index in indexes.items()
        if not reusable(embedding_path(folder, shard), index_keys(index), fingerprint, needs_orig)
    ]


def embed_shards(
    indexes: ShardIndexes,
    folder: Path,
    encoders: list[DualEncoder],
    needs_orig: bool,
    options: PassOptions,
    label: str = "image filters: embedding",
    show_progress: bool = True,
) -> dict[str, int]:
    """Write folder/NNNNN.parquet for every shard of `indexes` not already done; returns counts."""
    folder.mkdir(parents=True, exist_ok=True)
    encoder = encoders[0] if encoders else None
    todo = pending_shards(indexes, folder, encoder.fingerprint if encoder else None, needs_orig)
    counts = Counter(reused_shards=len(indexes) - len(todo), embedded_shards=len(todo))
    if not todo:
        return dict(counts)
    transform = encoder.image_transform if encoder else None
    workers = loader_workers(options.workers, encoders)
    embedding = BatchEmbedding(encoders, needs_orig)
    in_loaders = bool(workers) and embeds_in_workers(encoders)
    dataset = ShardStream(
        todo, [indexes[s] for s in todo], transform, options.batch_size, embedding if in_loaders else None
    )
    context = "fork" if in_loaders else None  # the workers inherit the loaded model, never pickle it
    jpeg_decoder()  # TorchCodec's library is loaded once, here: forked loaders inherit it instead of each loading it
    loader = DataLoader(
        dataset,
        batch_size=None,
        collate_fn=as_yielded,
        num_workers=workers,
        persistent_workers=False,
        multiprocessing_context=context,
    )
    pending: dict[int, ShardResult] = {}
    with pass_progress(show_progress) as progress:
        task = progress.add_task(label, total=sum(len(indexes[s]) for s in todo))
        for batch, embedded in embedding.run(loader):
            result = pending.setdefault(batch["shard"], ShardResult())
            _collect(result, batch, embedded)
            progress.advance(task, len(batch["key"]))
            result.workers_done += batch["last"]
            if result.workers_done == max(1, workers):
                shard = todo[batch["shard"]]
                counts["undecodable"] += _write_shard(
                    embedding_path(folder, shard), pending.pop(batch["shard"]), encoder, options
                )
    return dict(counts)


def as_yielded(batch: dict[str, Any]) -> dict[str, Any]:
    """The loader's collate for ShardStream's batches, made already: as they are. Its default would
    turn the embeddings' arrays into tensors, each sent through a shared-memory file of its own."""
    return batch


Embedded = dict[str, np.ndarray | None]
Pixels = torch.Tensor | list[torch.Tensor]  # resized uint8 images: (N, 3, H, W), or N of (3, H, W)


class BatchEmbedding:
    """Each batch's images and captions (and source captions where the pass needs them) through the
    encoders: one in the calling thread, or round-robin over several GPUs in threads (their kernels
    release the GIL), results in batch order."""

    def __init__(self, encoders: list[DualEncoder], needs_orig: bool) -> None:
        self.encoders = encoders
        self.needs_orig = needs_orig
        self.pool = ThreadPoolExecutor(len(encoders)) if len(encoders) > 1 else None
        self.cpu_buffer: torch.Tensor | None = None  # normalised pixels; only a CPU encoder, alone, uses it

    def embed(self, encoder: DualEncoder, batch: dict[str, Any]) -> Embedded:
        """`images`: one row per decoded image (None if none was); `texts` and, where needed,
        `orig_texts`: one row per sample (a sample without a distinct source caption gets its caption's)."""
        captions, origs = batch["caption"], batch["orig"]
        texts = encoder.encode_texts(captions).numpy()
        embedded: Embedded = {"images": self._images(encoder, batch["pixels"]), "texts": texts}
        if self.needs_orig:
            distinct = [i for i, (o, c) in enumerate(zip(origs, captions, strict=True)) if o is not None and o != c]
            orig_texts = texts.copy()
            if distinct:
                orig_texts[distinct] = encoder.encode_texts([origs[i] for i in distinct]).numpy()
            embedded["orig_texts"] = orig_texts
        return embedded

    def _images(self, encoder: DualEncoder, pixels: Pixels | None) -> np.ndarray | None:
        """`pixels`: the batch's resized uint8 images, stacked (from a loader, for the main process)
        or one by one (in the loader that decoded them)."""
        if pixels is None:
            return None
        transform = encoder.image_transform
        if encoder.device.type != "cpu":
            assert isinstance(pixels, torch.Tensor), "a batch for a GPU comes stacked from its loader"
            pixels = pixels.to(encoder.device, non_blocking=True)
            return encoder.encode_images(transform.normalise(pixels)).numpy()
        chunks = [pixels[i : i + CPU_CHUNK] for i in range(0, len(pixels), CPU_CHUNK)]
        return np.concatenate([encoder.encode_images(transform.normalise(c, self._cpu_out(c))).numpy() for c in chunks])

    def _cpu_out(self, pixels: Pixels) -> torch.Tensor:
        """A float32 (N, 3, H, W) view to normalise a CPU chunk into. A fresh tensor for each one
        costs page faults, as much as the normalising itself."""
        shape = (len(pixels), *pixels[0].shape)
        buffer = self.cpu_buffer
        if self.pool is not None or buffer is None or buffer.shape[1:] != shape[1:] or len(buffer) < shape[0]:
            buffer = torch.empty(shape, dtype=torch.float32)
            if self.pool is None:  # threads would share it
                self.cpu_buffer = buffer
        return buffer[: shape[0]]

    def run(self, loader: DataLoader):
        """(batch, its Embedded or None without encoders) for every batch of the loader, in order;
        a batch the loader embedded already carries its own."""
        if not self.encoders:
            for batch in loader:
                yield batch, None
            return
        if self.pool is None:
            for batch in loader:
                yield batch, batch["embedded"] if "embedded" in batch else self.embed(self.encoders[0], batch)
            return
        in_flight: deque[tuple[dict[str, Any], Future]] = deque()
        for number, batch in enumerate(loader):
            encoder = self.encoders[number % len(self.encoders)]
            in_flight.append((batch, self.pool.submit(self.embed, encoder, batch)))
            if len(in_flight) > 2 * len(self.encoders):
                done, future = in_flight.popleft()
                yield done, future.result()
        while in_flight:
            done, future = in_flight.popleft()
            yield done, future.result()


def _collect(result: ShardResult, batch: dict[str, Any], embedded: Embedded | None) -> None:
    result.positions += batch["position"]
    result.keys += batch["key"]
    result.origs += batch["orig"]
    result.phashes += batch["phash"]
    if embedded is None:
        return
    if embedded["images"] is not None:
        result.images.append(embedded["images"])
    result.texts.append(embedded["texts"])
    if "orig_texts" in embedded:
        result.orig_texts.append(embedded["orig_texts"])


def _write_shard(path: Path, result: ShardResult, encoder: DualEncoder | None, options: PassOptions) -> int:
    """Order the shard's samples by position, write the file atomically; returns how many images
    were undecodable."""
    order = np.argsort(result.positions, kind="stable")
    keys = [result.keys[i] for i in order]
    phashes = [result.phashes[i] for i in order]
    columns: dict[str, pa.Array] = {"key": pa.array(keys, pa.string()), "phash": pa.array(phashes, pa.string())}
    decoded = np.array([result.phashes[i] is not None for i in range(len(keys))], bool)
    metadata: dict[str, Any] = {"dtype": options.dtype, "phash_method": PHASH_METHOD}
    if encoder is not None:
        dtype = DTYPES[options.dtype]
        images = np.zeros((len(keys), encoder.dim), np.float32)
        if result.images:
            images[decoded] = np.concatenate(result.images)  # arrival order: the decoded ones, in order
        valid = decoded[order]
        columns["image_embedding"] = vectors(images[order], valid, dtype)
        columns["text_embedding"] = vectors(np.concatenate(result.texts)[order], valid, dtype)
        if result.orig_texts:
            has_orig = np.array([result.origs[i] is not None for i in order], bool)
            columns[ORIG_COLUMN] = vectors(np.concatenate(result.orig_texts)[order], valid & has_orig, dtype)
        metadata.update(model=encoder.name, fingerprint=encoder.fingerprint)
    table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **WRITE_OPTIONS)
    return int((~decoded).sum())


def vectors(values: np.ndarray, valid: np.ndarray, dtype: Any) -> pa.Array:
    """(N, dim) -> a fixed-size list column of `dtype`, null where not valid."""
    flat = pa.array(np.ascontiguousarray(values, dtype).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1], mask=pa.array(~valid))


def matrix(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-size list column -> ((N, dim) array as stored, valid mask); null rows hold zeros."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dim = array.type.list_size
    values = np.asarray(array.values.fill_null(0))[array.offset * dim : (array.offset + len(array)) * dim]
    return values.reshape(len(array), dim), ~np.asarray(array.is_null())


def read_embeddings(path: Path, keys: list[str], columns: list[str]) -> pa.Table:
    """The saved rows of these keys, in this order (a file may hold more keys than a shard has left)."""
    table = pq.read_table(path, columns=["key", *columns])
    index = {key: row for row, key in enumerate(table["key"].to_pylist())}
    return table.take(pa.array([index[key] for key in keys], pa.int64()))


class _ImagesPerSecond(ProgressColumn):
    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} images/s" if speed else "- images/s")


def pass_progress(show: bool = True) -> Progress:
    """The embedding pass's progress bar: samples done and images/s."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _ImagesPerSecond(),
        TimeElapsedColumn(),
        disable=not show,
    )
