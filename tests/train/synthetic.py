"""Synthetic capbuild shards and tiny random-weight models for the trainer's tests and benchmarks.

Images are coloured shapes on coloured backgrounds; Italian captions (and English originals) are
generated from the same attributes, so a model can learn to match them.
"""

from __future__ import annotations

import io
import itertools
import json
import random
from pathlib import Path

import webdataset as wds
from PIL import Image, ImageDraw

COLOURS = {
    "rosso": ("red", (220, 30, 30)),
    "verde": ("green", (30, 180, 60)),
    "blu": ("blue", (30, 60, 220)),
    "giallo": ("yellow", (240, 220, 40)),
}
SHAPES = {"cerchio": "circle", "quadrato": "square", "triangolo": "triangle"}
IMAGE_SIDE = 32
COMBINATIONS = [(s, c, b) for s, c, b in itertools.product(SHAPES, COLOURS, COLOURS) if c != b]


def draw(shape: str, colour: str, background: str, rng: random.Random) -> Image.Image:
    """One image: the shape at a random place and size on a plain background."""
    image = Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), COLOURS[background][1])
    pen = ImageDraw.Draw(image)
    half = rng.randint(7, 11)
    cx, cy = rng.randint(half, IMAGE_SIDE - half), rng.randint(half, IMAGE_SIDE - half)
    box = (cx - half, cy - half, cx + half, cy + half)
    fill = COLOURS[colour][1]
    if shape == "cerchio":
        pen.ellipse(box, fill=fill)
    elif shape == "quadrato":
        pen.rectangle(box, fill=fill)
    else:
        pen.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=fill)
    return image


def captions_for(shape: str, colour: str, background: str) -> tuple[list[str], str]:
    """Italian captions of an image (first is `caption`) and the English original."""
    adjective = colour if shape != "cerchio" or colour != "giallo" else "giallo"
    captions = [
        f"un {shape} {adjective} su sfondo {background}",
        f"{shape} {adjective}, sfondo {background}",
        f"c'è un {shape} {adjective} sopra un fondo {background}",
    ]
    english = f"a {COLOURS[colour][0]} {SHAPES[shape]} on a {COLOURS[background][0]} background"
    return captions, english


def write_shards(
    folder: Path, count: int, *, seed: int, per_shard: int = 64, start: int = 0, label: bool = False
) -> list[str]:
    """Write `count` samples as KEY.jpg / KEY.txt / KEY.json shards (plus sizes.json); returns the tar paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths: list[str] = []
    sizes: dict[str, int] = {}
    for first in range(0, count, per_shard):
        path = folder / f"{len(paths):05d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for index in range(first, min(first + per_shard, count)):
                shape, colour, background = COMBINATIONS[(start + index) % len(COMBINATIONS)]
                captions, english = captions_for(shape, colour, background)
                buffer = io.BytesIO()
                draw(shape, colour, background, rng).save(buffer, format="JPEG", quality=95)
                meta = {
                    "source": "synthetic",
                    "source_id": str(start + index),
                    "caption": captions[0],
                    "captions": captions,
                    "caption_orig": english,
                    "lang": "it",
                    "lang_orig": "en",
                    "split": "train",
                    "width": IMAGE_SIDE,
                    "height": IMAGE_SIDE,
                }
                if label:
                    meta["label"] = list(SHAPES).index(shape)
                key = f"s{seed:03d}{start + index:07d}"
                sink.write({"__key__": key, "jpg": buffer.getvalue(), "txt": captions[0], "json": json.dumps(meta)})
        sizes[path.name] = min(first + per_shard, count) - first
        paths.append(str(path))
    (folder / "sizes.json").write_text(json.dumps(sizes))
    return paths


def all_captions() -> list[str]:
    texts = []
    for combination in COMBINATIONS:
        captions, english = captions_for(*combination)
        texts.extend([*captions, english])
    return texts


def save_tokenizer(folder: Path) -> None:
    """A WordPiece tokenizer of the synthetic captions' words and letters, saved as a BERT tokenizer.

    The vocabulary is listed, not trained: the tokenizers WordPiece trainer breaks frequency ties
    differently from one process to the next, which would give the tiny models other token ids, and
    so other scores, on every run."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    normalizer, pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = {
        word for text in all_captions() for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    }
    letters = sorted({letter for word in words for letter in word} | set("0123456789"))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = [*specials, *sorted(words), *letters, *(f"##{letter}" for letter in letters)]
    vocabulary = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    tokenizer = Tokenizer(models.WordPiece(vocabulary, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizer, pre_tokenizer
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    BertTokenizerFast(tokenizer_object=tokenizer).save_pretrained(folder)


def save_tiny_towers(root: Path, hidden: int = 64, layers: int = 2) -> tuple[Path, Path]:
    """Random-weight ViT and BERT of a few layers, each with its processor, saved under `root`.

    The towers embed through their [CLS] pooler, as the dual encoder does; with the default 0.02
    init, random attention is near-uniform, every pooled embedding is alike and training collapses
    them, so these use a wider init (0.1)."""
    from transformers import BertConfig, BertModel, ViTConfig, ViTImageProcessor, ViTModel

    vision, text = root / "vit", root / "bert"
    vit = ViTConfig(
        image_size=IMAGE_SIDE,
        patch_size=8,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 2,
        initializer_range=0.1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    ViTModel(vit).save_pretrained(vision)
    ViTImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}).save_pretrained(vision)
    save_tokenizer(text)
    bert = BertConfig(
        vocab_size=200,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 2,
        max_position_embeddings=64,
        initializer_range=0.1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(bert).save_pretrained(text)
    return vision, text


def save_tiny_clip(folder: Path, projection_dim: int = 32) -> Path:
    """A random-weight CLIPModel (vision + text + projections) with a WordPiece tokenizer: stands in
    for an English CLIP as a vision checkpoint and as a distillation teacher."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    save_tokenizer(folder)
    config = CLIPConfig(
        text_config={
            "vocab_size": 200,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "eos_token_id": 3,  # [SEP] closes a caption
        },
        vision_config={
            "image_size": IMAGE_SIDE,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=projection_dim,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": IMAGE_SIDE}, crop_size=IMAGE_SIDE).save_pretrained(folder)
    return folder
