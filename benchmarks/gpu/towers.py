"""Random-weight towers at ViT-B/32 and BERT-base sizes (or tiny ones for the CPU smoke run), saved
as local checkpoints with their processors, and the dual encoder `capbuild train` builds from them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

# BERT-base's own vocabulary size: the tokenizer below knows 200 words, but the embedding table (and
# its optimizer state) is full size, as in a real run.
BERT_VOCAB = 30522
# The test suite's WordPiece tokenizer, loaded by path: a `tests` package installed on the GPU machine
# would shadow the checkout's namespace package.
SYNTHETIC = Path(__file__).resolve().parents[2] / "tests" / "train" / "synthetic.py"
TINY_SIZE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


def save_towers(root: Path, tiny: bool) -> tuple[Path, Path]:
    """ViT-B/32 (224 px, patch 32) and BERT-base: transformers' default configs."""
    from transformers import BertConfig, BertModel, ViTConfig, ViTImageProcessor, ViTModel

    vision, text = root / "vit", root / "bert"
    if (text / "config.json").is_file():
        return vision, text
    size = TINY_SIZE if tiny else {}
    ViTModel(ViTConfig(image_size=64 if tiny else 224, patch_size=32, **size)).save_pretrained(vision)
    ViTImageProcessor(size={"height": 64, "width": 64} if tiny else None).save_pretrained(vision)
    save_tokenizer(text)
    BertModel(BertConfig(vocab_size=200 if tiny else BERT_VOCAB, **size)).save_pretrained(text)
    return vision, text


def save_dual_encoder(folder: Path, towers: tuple[Path, Path], projection_dim: int) -> Path:
    """A VisionTextDualEncoderModel over the towers with its processor: what a `capbuild train` run
    saves, loadable by capbuild's dual-encoder loader."""
    from capbuild.train.model import build_model

    if not (folder / "config.json").is_file():
        model, processor = build_model(str(towers[0]), str(towers[1]), projection_dim)
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    return folder


def save_tokenizer(folder: Path) -> None:
    spec = importlib.util.spec_from_file_location("capbuild_tests_synthetic", SYNTHETIC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.save_tokenizer(folder)
