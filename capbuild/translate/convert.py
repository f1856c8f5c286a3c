"""`capbuild translate convert`: a Hugging Face MarianMT / NLLB-200 / M2M100 model to CTranslate2,
with the tokenizer saved beside it so that the folder is all a build needs."""

from __future__ import annotations

import shutil
from pathlib import Path

from capbuild.errors import BuildConflictError, ConfigError
from capbuild.translate.model import ModelInfo, detect_family, fingerprint_model

SUPPORTED_MODEL_TYPES = {"marian": "marian", "m2m_100": "m2m100", "nllb-moe": "nllb"}
QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


def convert_model(model: str, out: Path, quantization: str | None = "int8", force: bool = False) -> ModelInfo:
    """Convert `model` (a local folder or a Hub name) into `out` and return the model's info."""
    import transformers
    from ctranslate2.converters import TransformersConverter

    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantization!r}; choose one of {', '.join(QUANTIZATIONS)}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise BuildConflictError(f"{out} is not empty; pass --force to replace it")
    config = transformers.AutoConfig.from_pretrained(model)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"{model} is a {config.model_type!r} model; capbuild translates with MarianMT (OPUS-MT), "
            "NLLB-200 and M2M100 models"
        )
    tokenizer = transformers.AutoTokenizer.from_pretrained(model)
    if out.exists() and force:
        shutil.rmtree(out)
    TransformersConverter(model).convert(str(out), quantization=quantization, force=True)
    # The tokenizer files (sentencepiece models, vocab, tokenizer.json, tokenizer_config.json) go
    # beside model.bin; CTranslate2's own config.json stays (a tokenizer never writes one).
    tokenizer.save_pretrained(str(out))
    info = ModelInfo(
        name=Path(model).name if Path(model).exists() else model,
        family=detect_family(out),
        fingerprint=fingerprint_model(out),
        source=str(model),
        quantization=quantization or "",
    )
    info.write(out)
    return info
