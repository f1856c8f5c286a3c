"""Tiny random-weight dual encoders of every kind `load_dual_encoder` accepts, saved on the fly."""

from __future__ import annotations

import json
from pathlib import Path

from tests.train.synthetic import IMAGE_SIDE, save_tiny_clip, save_tiny_towers, save_tokenizer

OPEN_CLIP_ARCH = "capbuild-tiny-vit"
OPEN_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": IMAGE_SIDE, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def save_tiny_siglip(folder: Path) -> Path:
    """A random-weight SiglipModel with its image processor and a WordPiece tokenizer."""
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    save_tokenizer(folder)
    config = SiglipConfig(
        text_config={
            "vocab_size": 200,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
        },
        vision_config={
            "image_size": IMAGE_SIDE,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
    )
    SiglipModel(config).save_pretrained(folder)
    SiglipImageProcessor(size={"height": IMAGE_SIDE, "width": IMAGE_SIDE}).save_pretrained(folder)
    return folder


def save_tiny_dual_encoder(folder: Path) -> Path:
    """A VisionTextDualEncoderModel over a tiny ViT and BERT, saved with its processor."""
    from capbuild.train.model import build_model

    towers = save_tiny_towers(folder.parent / f"{folder.name}-towers", hidden=32, layers=1)
    model, processor = build_model(str(towers[0]), str(towers[1]), projection_dim=16)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def save_tiny_run(folder: Path) -> Path:
    """What a finished `capbuild train` run leaves: the saved dual encoder and its train_config.json."""
    from capbuild.train.config import TrainConfig

    save_tiny_dual_encoder(folder)
    TrainConfig(data=["shards"], vision="vit", text="bert", out=folder, steps=1, max_length=24).save(folder)
    return folder


def save_tiny_open_clip(folder: Path) -> str:
    """A tiny open_clip ViT registered with add_model_config, its random weights saved to a file;
    returns the `open_clip:ARCH:FILE` spec."""
    import open_clip
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{OPEN_CLIP_ARCH}.json"
    config_path.write_text(json.dumps(OPEN_CLIP_CONFIG))
    open_clip.add_model_config(config_path)
    model = open_clip.create_model(OPEN_CLIP_ARCH)
    weights = folder / "weights.pt"
    torch.save(model.state_dict(), weights)
    return f"open_clip:{OPEN_CLIP_ARCH}:{weights}"


def save_clip(folder: Path) -> Path:
    return save_tiny_clip(folder, projection_dim=16)
