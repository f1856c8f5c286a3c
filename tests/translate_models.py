"""Tiny random-weight translation models for the translate tests, built on the fly (no download)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

WORDS_TEXT = """a man woman child dog cat horse bird riding walking sitting standing on in near the with
red blue green old young small large street beach park bench table car bike train boat grass water snow two
three people"""
WORDS = WORDS_TEXT.split()


def fixture_captions(count: int = 400, seed: int = 0) -> list[str]:
    """COCO-like English captions drawn from a small word list."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14))).capitalize() + "." for _ in range(count)]


def build_marian(
    folder: Path, d_model: int = 32, layers: int = 2, vocab_size: int = 96, ffn: int = 64, max_positions: int = 512
) -> Path:
    """A MarianMT in the OPUS-MT vocabulary layout CTranslate2 expects: `</s>`=0, `<unk>`=1, the
    sentencepiece pieces, `<pad>`=V-1 (eos 0, pad = decoder start = V-1). `vocab_size` above the
    pieces' count is filled with unused tokens (for a model of realistic size); `max_positions` is
    the size of its position table (OPUS-MT: 512)."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(fixture_captions(2000)), model_writer=model, vocab_size=min(vocab_size - 2, 400),
        model_type="unigram", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1,
        hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes(model.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    pieces = [
        processor.id_to_piece(i)
        for i in range(processor.get_piece_size())
        if not (processor.is_control(i) or processor.is_unknown(i))
    ]
    vocab = ["</s>", "<unk>", *pieces]
    vocab += [f"<unused{i}>" for i in range(vocab_size - 1 - len(vocab))] + ["<pad>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    tokenizer = MarianTokenizer(
        source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"), vocab=str(folder / "vocab.json"),
        source_lang="en", target_lang="it",
    )  # fmt: skip
    tokenizer.save_pretrained(folder)
    size = len(vocab)
    config = MarianConfig(
        vocab_size=size, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=max(2, d_model // 64), decoder_attention_heads=max(2, d_model // 64),
        encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_position_embeddings=max_positions,
        pad_token_id=size - 1, eos_token_id=0, decoder_start_token_id=size - 1, forced_eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(folder)
    return folder


def build_nllb(folder: Path) -> Path:
    """An NLLB-like M2M100 (NllbTokenizer with the FLORES-200 language tokens, character vocabulary)."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "\u2581": 4}
    for char in sorted(set("".join(fixture_captions()))):
        vocab.setdefault(char, len(vocab))
    tokenizer = NllbTokenizer(vocab=vocab, merges=[], src_lang="eng_Latn", tgt_lang="ita_Latn")
    tokenizer.save_pretrained(folder)
    config = M2M100Config(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    return folder
