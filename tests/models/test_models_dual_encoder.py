"""load_dual_encoder over tiny random models of every accepted kind."""

from __future__ import annotations

import pickle
import random
import shutil

import pytest

torch = pytest.importorskip("torch", reason="dual encoders need the `train` extra: pip install 'capbuild[train]'")
pytest.importorskip("transformers", reason="dual encoders need the `train` extra: pip install 'capbuild[train]'")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from capbuild.errors import ConfigError, InputError  # noqa: E402
from capbuild.models.dual_encoder import load_dual_encoder  # noqa: E402
from tests.dual_encoders import (  # noqa: E402
    save_clip,
    save_tiny_dual_encoder,
    save_tiny_open_clip,
    save_tiny_run,
    save_tiny_siglip,
)
from tests.train.synthetic import IMAGE_SIDE, draw  # noqa: E402

KINDS = ("clip", "siglip", "dual_encoder", "run", "open_clip")
TEXTS = ["un cerchio rosso su sfondo blu", "a green square", ""]


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("dual-encoders")
    made = {
        "clip": str(save_clip(root / "clip")),
        "siglip": str(save_tiny_siglip(root / "siglip")),
        "dual_encoder": str(save_tiny_dual_encoder(root / "vtde")),
        "run": str(save_tiny_run(root / "run")),
    }
    try:
        import open_clip  # noqa: F401
    except ImportError:
        return made
    made["open_clip"] = save_tiny_open_clip(root / "open_clip")
    return made


def spec_of(specs: dict[str, str], kind: str) -> str:
    if kind not in specs:
        pytest.skip("open_clip_torch is not installed: pip install 'capbuild[openclip]'")
    return specs[kind]


def images(count: int = 4, size: tuple[int, int] = (IMAGE_SIDE, IMAGE_SIDE)) -> list[Image.Image]:
    rng = random.Random(0)
    pictures = [draw(s, c, b, rng) for s, c, b in [("cerchio", "rosso", "blu"), ("quadrato", "verde", "giallo")] * 2]
    return [p.resize(size) for p in pictures[:count]]


@pytest.mark.parametrize("kind", KINDS)
def test_embeddings_are_normalised_and_deterministic(specs, kind):
    encoder = load_dual_encoder(spec_of(specs, kind), device="cpu")
    assert encoder.name and len(encoder.fingerprint) == 16
    pixels = torch.stack([encoder.image_transform(image) for image in images()])
    first, again = encoder.encode_images(pixels), encoder.encode_images(pixels)
    assert first.shape == (4, encoder.dim) and first.dtype == torch.float32
    assert torch.allclose(first.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.equal(first, again)
    texts = encoder.encode_texts(TEXTS)
    assert texts.shape == (3, encoder.dim)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(texts[0], texts[1])
    assert encoder.encode_texts([]).shape == (0, encoder.dim)


@pytest.mark.parametrize("kind", KINDS)
def test_image_transform_is_picklable_and_takes_tensors(specs, kind):
    encoder = load_dual_encoder(spec_of(specs, kind), device="cpu")
    transform = pickle.loads(pickle.dumps(encoder.image_transform))
    picture = images(1, size=(50, 40))[0]
    from_pil = transform(picture)
    assert from_pil.shape == (3, *encoder.image_transform.size)
    from_tensor = transform.from_uint8(torch.from_numpy(np.array(picture)).permute(2, 0, 1))
    assert torch.equal(from_pil, from_tensor)
    grey = transform(picture.convert("L"))
    assert grey.shape == from_pil.shape
    pixels = transform.resize_uint8(torch.from_numpy(np.array(picture)).permute(2, 0, 1))
    buffer = torch.full((1, *from_pil.shape), float("nan"))
    assert torch.equal(transform.normalise(pixels[None], out=buffer), from_pil[None])  # the same bits
    assert torch.equal(buffer[0], from_pil)
    buffer.fill_(float("nan"))
    assert torch.equal(transform.normalise([pixels], out=buffer), from_pil[None])  # images one by one, not stacked


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_hugging_face_models_match_their_own_processor(specs, kind):
    """Our tensor-side preprocessing and tokenisation give the embeddings the model's own processor gives."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    folder = specs[kind]
    model, processor = AutoModel.from_pretrained(folder).eval(), AutoImageProcessor.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = load_dual_encoder(folder, device="cpu")
    pictures = images()
    with torch.no_grad():
        expected = model.get_image_features(**processor(images=pictures, return_tensors="pt")).pooler_output
        padding = "max_length" if kind == "siglip" else True
        tokens = tokenizer(TEXTS, padding=padding, max_length=16 if kind == "siglip" else None, return_tensors="pt")
        tokens.pop("token_type_ids", None)
        expected_text = model.get_text_features(**tokens).pooler_output
    ours = encoder.encode_images(torch.stack([encoder.image_transform(p) for p in pictures]))
    assert torch.allclose(ours, torch.nn.functional.normalize(expected, dim=-1), atol=2e-3)
    assert torch.allclose(encoder.encode_texts(TEXTS), torch.nn.functional.normalize(expected_text, dim=-1), atol=1e-5)


def test_open_clip_matches_its_own_preprocess(specs):
    import open_clip

    spec = spec_of(specs, "open_clip")
    _, arch, weights = spec.split(":", 2)
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=weights)
    encoder = load_dual_encoder(spec, device="cpu")
    pictures = images(size=(48, 40))
    with torch.no_grad():
        expected = model.eval().encode_image(torch.stack([preprocess(p) for p in pictures]), normalize=True)
        expected_text = model.encode_text(open_clip.get_tokenizer(arch)(TEXTS), normalize=True)
    ours = encoder.encode_images(torch.stack([encoder.image_transform(p) for p in pictures]))
    assert torch.allclose(ours, expected, atol=0.05)  # PIL's and torchvision's bicubic differ slightly
    assert torch.allclose(encoder.encode_texts(TEXTS), expected_text, atol=1e-5)
    assert encoder.name == f"open_clip:{arch}:weights.pt"


def test_fingerprint_follows_the_weights_not_the_folder(specs, tmp_path):
    original = load_dual_encoder(specs["clip"], device="cpu")
    copy = tmp_path / "copy"
    shutil.copytree(specs["clip"], copy)
    assert load_dual_encoder(str(copy), device="cpu").fingerprint == original.fingerprint
    other = save_clip(tmp_path / "other", seed=1)  # other random weights
    assert load_dual_encoder(str(other), device="cpu").fingerprint != original.fingerprint


def test_a_run_folder_uses_the_trainers_preprocessing(specs):
    encoder = load_dual_encoder(specs["run"], device="cpu")
    assert encoder.name.startswith("capbuild-run:")
    assert encoder.image_transform.resize_mode == "shortest" and encoder.max_length == 24
    plain = load_dual_encoder(specs["dual_encoder"], device="cpu")
    assert plain.image_transform.resize_mode == "squash"  # a ViT image processor resizes to a square


def test_bad_specs_fail_clearly(specs, tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_dual_encoder(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"config\.json"):
        load_dual_encoder(str(tmp_path / "empty"))
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)).save_pretrained(
        tmp_path / "bert"
    )
    with pytest.raises(InputError, match="get_image_features"):
        load_dual_encoder(str(tmp_path / "bert"))
    if "open_clip" in specs:
        with pytest.raises(ConfigError, match="ARCH:WEIGHTS_FILE"):
            load_dual_encoder("open_clip:ViT-B-32")
        with pytest.raises(ConfigError, match="no architecture"):
            load_dual_encoder(f"open_clip:no-such-arch:{specs['open_clip'].split(':', 2)[2]}")


def test_check_dual_encoder_fails_before_loading(specs, tmp_path):
    from capbuild.models.dual_encoder import check_dual_encoder

    for kind in specs:
        check_dual_encoder(specs[kind])
    with pytest.raises(InputError, match="not a folder"):
        check_dual_encoder(str(tmp_path / "nowhere"))
    if "open_clip" in specs:
        with pytest.raises(InputError, match="not found"):
            check_dual_encoder(f"open_clip:ViT-B-32:{tmp_path / 'missing.bin'}")
        with pytest.raises(ConfigError, match="ARCH:WEIGHTS_FILE"):
            check_dual_encoder("open_clip:ViT-B-32")
