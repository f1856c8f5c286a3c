"""A converted CTranslate2 model folder: its name, family (marian, nllb, m2m100) and fingerprint."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from capbuild.errors import InputError

MODEL_INFO_FILE = "capbuild-mt.json"
VOCABULARY_FILES = (
    "shared_vocabulary.json", "shared_vocabulary.txt", "source_vocabulary.json", "source_vocabulary.txt",
)  # fmt: skip
FAMILIES = ("marian", "nllb", "m2m100")
# config.json keys naming a model's position limits (Hugging Face names; a converted folder may hold them).
SOURCE_LIMIT_KEYS = ("max_source_positions", "max_position_embeddings")
TARGET_LIMIT_KEYS = ("max_target_positions", "max_position_embeddings")
# The model.bin variables holding the learned or stored position tables of CTranslate2's Transformer spec.
POSITION_TABLES = ("encoder/position_encodings/encodings", "decoder/position_encodings/encodings")
MODEL_BIN_VERSIONS = (5, 6)  # the binary layouts read_position_tables understands


@dataclass(frozen=True)
class ModelInfo:
    """What identifies a translation model: `fingerprint` is a digest of its weights and vocabulary."""

    name: str
    family: str
    fingerprint: str
    source: str = ""
    quantization: str = ""

    def write(self, folder: Path) -> None:
        (folder / MODEL_INFO_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


def check_model_dir(folder: Path) -> None:
    if not (folder / "model.bin").is_file():
        raise InputError(
            f"{folder} is not a CTranslate2 model folder (no model.bin); convert a Hugging Face model with "
            f"`capbuild translate convert --model MODEL --out {folder}`"
        )


def read_model_info(folder: Path) -> ModelInfo:
    """The model's info from capbuild-mt.json (written by `capbuild translate convert`), or worked out
    from the folder itself for a model converted elsewhere (hashing its weights once)."""
    folder = Path(folder)
    check_model_dir(folder)
    info_path = folder / MODEL_INFO_FILE
    if info_path.is_file():
        return ModelInfo(**json.loads(info_path.read_text(encoding="utf-8")))
    return ModelInfo(name=folder.resolve().name, family=detect_family(folder), fingerprint=fingerprint_model(folder))


def fingerprint_model(folder: Path) -> str:
    """A digest of model.bin, the vocabularies and config.json: two folders with the same digest
    translate the same."""
    digest = hashlib.sha256()
    for name in ("model.bin", "config.json", *VOCABULARY_FILES, "target_vocabulary.json", "target_vocabulary.txt"):
        path = folder / name
        if not path.is_file():
            continue
        digest.update(name.encode())
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def detect_family(folder: Path) -> str:
    """nllb when the vocabulary holds FLORES-200 language tokens, m2m100 when it holds __xx__ ones,
    marian (a single language pair, no language tokens) otherwise."""
    vocabulary = _source_vocabulary(folder)
    if "eng_Latn" in vocabulary:
        return "nllb"
    if "__en__" in vocabulary:
        return "m2m100"
    return "marian"


def _source_vocabulary(folder: Path) -> set[str]:
    for name in VOCABULARY_FILES:
        path = folder / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            return set(json.loads(text)) if name.endswith(".json") else set(text.splitlines())
    return set()


@dataclass(frozen=True)
class ModelLimits:
    """How many positions (tokens, special tokens included) the model's encoder and decoder have;
    None where the model sets no limit that capbuild could read."""

    source: int | None = None
    target: int | None = None


def read_model_limits(folder: Path) -> ModelLimits:
    """The model's position limits: from config.json (max_source_positions / max_target_positions /
    max_position_embeddings) where it names them, else from the sizes of the position tables stored
    in model.bin (CTranslate2 writes no such keys in its own config.json)."""
    folder = Path(folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    tables = read_position_tables(folder / "model.bin")
    source = next((int(config[k]) for k in SOURCE_LIMIT_KEYS if config.get(k)), tables.get(POSITION_TABLES[0]))
    target = next((int(config[k]) for k in TARGET_LIMIT_KEYS if config.get(k)), tables.get(POSITION_TABLES[1]))
    return ModelLimits(source=source, target=target)


def read_position_tables(model_bin: Path) -> dict[str, int]:
    """Rows of the position tables in a CTranslate2 model.bin, by variable name (aliases resolved),
    read from the variable headers only; {} for a layout this code does not know."""
    try:
        with model_bin.open("rb") as f:
            (version,) = _unpack(f, "I")
            if version not in MODEL_BIN_VERSIONS:
                return {}
            _read_string(f)  # the spec's name
            _unpack(f, "I")  # its revision
            (count,) = _unpack(f, "I")
            rows: dict[str, int] = {}
            for _ in range(count):
                name = _read_string(f)
                (rank,) = _unpack(f, "B")
                shape = _unpack(f, "I" * rank)
                _dtype, size = _unpack(f, "BI")
                f.seek(size, 1)
                if name in POSITION_TABLES and shape:
                    rows[name] = shape[0]
            (aliases,) = _unpack(f, "I")
            for _ in range(aliases):
                alias, target = _read_string(f), _read_string(f)
                if alias in POSITION_TABLES and target in rows:
                    rows[alias] = rows[target]
            return rows
    except (OSError, struct.error, UnicodeDecodeError):
        return {}


def _unpack(f: BinaryIO, layout: str) -> tuple[int, ...]:
    layout = "=" + layout  # native byte order, standard sizes, no padding (as CTranslate2 writes it)
    size = struct.calcsize(layout)
    data = f.read(size)
    if len(data) != size:
        raise struct.error("model.bin ends early")
    return struct.unpack(layout, data)


def _read_string(f: BinaryIO) -> str:
    (length,) = _unpack(f, "H")
    return f.read(length)[:-1].decode("utf-8")
