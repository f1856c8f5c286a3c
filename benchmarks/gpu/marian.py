"""An OPUS-MT-size MarianMT with random weights and a sentencepiece model trained on the benchmark's
captions, so that captions split into about as many pieces as a real subword model makes of them
(1,200 BPE pieces from the 100 CC3M captions: about 1.2 pieces per word; a unigram model trained on
so little text falls back to about 2 pieces per word).

The vocabulary follows the OPUS-MT layout CTranslate2's converter expects (as in
tests/translate_models.py): `</s>`=0, `<unk>`=1, the pieces, unused fillers up to the model's
vocabulary size, `<pad>`=V-1 (eos 0, pad = decoder start = V-1).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

OPUS_MT = {"d_model": 512, "layers": 6, "vocab_size": 32000, "ffn": 2048}
TINY = {"d_model": 32, "layers": 2, "vocab_size": 600, "ffn": 64}


def build_marian(
    folder: Path, corpus: list[str], d_model: int, layers: int, vocab_size: int, ffn: int, pieces: int = 1200
) -> Path:
    """Save a random-weight MarianMTModel and its tokenizer (en -> it) in `folder`."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=min(vocab_size - 2, pieces),
        model_type="bpe", character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0, pad_id=-1,
        hard_vocab_limit=False, minloglevel=2,
    )  # fmt: skip
    for name in ("source.spm", "target.spm"):
        (folder / name).write_bytes(model.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    vocab = ["</s>", "<unk>"] + [
        processor.id_to_piece(i)
        for i in range(processor.get_piece_size())
        if not (processor.is_control(i) or processor.is_unknown(i))
    ]
    vocab += [f"<unused{i}>" for i in range(vocab_size - 1 - len(vocab))] + ["<pad>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    MarianTokenizer(
        source_spm=str(folder / "source.spm"), target_spm=str(folder / "target.spm"), vocab=str(folder / "vocab.json"),
        source_lang="en", target_lang="it",
    ).save_pretrained(folder)  # fmt: skip
    size = len(vocab)
    config = MarianConfig(
        vocab_size=size, d_model=d_model, encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=max(2, d_model // 64), decoder_attention_heads=max(2, d_model // 64),
        encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_position_embeddings=512,
        pad_token_id=size - 1, eos_token_id=0, decoder_start_token_id=size - 1, forced_eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(folder)
    return folder
