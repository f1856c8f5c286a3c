"""A converted CTranslate2 model folder: its name, family (marian, nllb, m2m100) and fingerprint."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from capbuild.errors import InputError

MODEL_INFO_FILE = "capbuild-mt.json"
VOCABULARY_FILES = (
    "shared_vocabulary.json", "shared_vocabulary.txt", "source_vocabulary.json", "source_vocabulary.txt",
)  # fmt: skip
FAMILIES = ("marian", "nllb", "m2m100")


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
