"""POS tagging with a transformers token-classification model (e.g. CAMeL-Lab's Arabic
`bert-base-arabic-camelbert-msa-pos-msa`): word pieces are merged back into the tokenizer's words
(a word takes the tag of its first piece) and the model's labels are mapped to UPOS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capbuild.errors import ConfigError, InputError
from capbuild.filters.options import PosOptions

UPOS_TAGS = frozenset(
    {
        "ADJ",
        "ADP",
        "ADV",
        "AUX",
        "CCONJ",
        "DET",
        "INTJ",
        "NOUN",
        "NUM",
        "PART",
        "PRON",
        "PROPN",
        "PUNCT",
        "SCONJ",
        "SYM",
        "VERB",
        "X",
    }
)

# CAMeL Tools' MSA POS tags (the labels of CAMeL-Lab's *-pos-msa models) to UPOS.
CAMEL_TAG_MAP: dict[str, str] = {
    "abbrev": "X",
    "adj": "ADJ",
    "adj_comp": "ADJ",
    "adj_num": "ADJ",
    "adv": "ADV",
    "adv_interrog": "ADV",
    "adv_rel": "ADV",
    "conj": "CCONJ",
    "conj_sub": "SCONJ",
    "digit": "NUM",
    "foreign": "X",
    "interj": "INTJ",
    "latin": "X",
    "noun": "NOUN",
    "noun_num": "NUM",
    "noun_prop": "PROPN",
    "noun_quant": "NOUN",
    "part": "PART",
    "part_det": "DET",
    "part_focus": "PART",
    "part_fut": "PART",
    "part_interrog": "PART",
    "part_neg": "PART",
    "part_restrict": "PART",
    "part_verb": "PART",
    "part_voc": "PART",
    "prep": "ADP",
    "pron": "PRON",
    "pron_dem": "PRON",
    "pron_exclam": "PRON",
    "pron_interrog": "PRON",
    "pron_rel": "PRON",
    "punc": "PUNCT",
    "verb": "VERB",
    "verb_pseudo": "VERB",
}
# A word left with no piece (the tokenizer's normaliser removed all of it) counts as a word that is no PROPN.
UNTAGGED = "X"
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def check_hf(options: PosOptions) -> None:
    if not options.pos_model:
        raise ConfigError(
            "--pos-backend hf needs --pos-model: a local folder or a Hugging Face model name, e.g. "
            "CAMeL-Lab/bert-base-arabic-camelbert-msa-pos-msa (fetch it once with "
            "`hf download CAMeL-Lab/bert-base-arabic-camelbert-msa-pos-msa --local-dir camelbert-pos`)."
        )
    _locate_model(options.pos_model)
    if options.pos_tag_map and not Path(options.pos_tag_map).is_file():
        raise ConfigError(f"--pos-tag-map {options.pos_tag_map}: no such file")


def _locate_model(name: str) -> None:
    """Fail now, before the build writes anything, when the model is neither a folder nor reachable by name
    (reads its config only)."""
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as error:
        raise InputError(
            f"cannot find the POS model {name!r} ({error}). Pass a local folder to --pos-model, "
            f"or fetch the model once with `hf download {name} --local-dir DIR`."
        ) from error


def resolve_tag_map(labels: list[str], tag_map_file: str | None = None) -> dict[str, str]:
    """Model label -> UPOS: from the user's JSON file, else UPOS labels as they are, else CAMeL's tags."""
    if tag_map_file:
        tag_map = json.loads(Path(tag_map_file).read_text(encoding="utf-8"))
    elif all(label.upper() in UPOS_TAGS for label in labels):
        tag_map = {label: label.upper() for label in labels}
    else:
        tag_map = CAMEL_TAG_MAP
    unmapped = sorted(set(labels) - tag_map.keys())
    if unmapped:
        raise ConfigError(
            f"the POS model's labels {unmapped} have no UPOS tag: pass --pos-tag-map FILE.json "
            '({"model label": "UPOS tag", ...})'
        )
    wrong = sorted({tag for tag in tag_map.values() if tag not in UPOS_TAGS})
    if wrong:
        raise ConfigError(f"the tag map maps to {wrong}, which are not UPOS tags ({', '.join(sorted(UPOS_TAGS))})")
    return {label: tag_map[label] for label in labels}


def merge_word_pieces(word_ids: list[int | None], piece_tags: list[str], tags: dict[int, str]) -> None:
    """Give each word the tag of its first piece (special tokens have no word id); `tags` is filled in
    place so that a long text's chunks add to the same words."""
    for word_id, tag in zip(word_ids, piece_tags, strict=True):
        if word_id is not None and word_id not in tags:
            tags[word_id] = tag


class HfBackend:
    """A token-classification model and its fast tokenizer; batches sorted by length, GPU when available."""

    def __init__(self, tokenizer: Any, model: Any, tag_map: dict[str, str], batch_size: int = 64) -> None:
        import torch

        if not tokenizer.is_fast:
            raise ConfigError("--pos-backend hf needs a model with a fast (Rust) tokenizer, to map pieces to words")
        self.tokenizer = tokenizer
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.upos = [tag_map[model.config.id2label[i]] for i in range(model.config.num_labels)]
        self.batch_size = batch_size
        self.max_length = min(tokenizer.model_max_length, model.config.max_position_embeddings)

    @classmethod
    def load(cls, options: PosOptions) -> HfBackend:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        check_hf(options)
        try:
            tokenizer = AutoTokenizer.from_pretrained(options.pos_model)
            model = AutoModelForTokenClassification.from_pretrained(options.pos_model)
        except OSError as error:
            raise ConfigError(
                f"cannot load the POS model {options.pos_model!r} ({error}). Pass a local folder to --pos-model, "
                f"or fetch the model once with `hf download {options.pos_model} --local-dir DIR`."
            ) from error
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        return cls(tokenizer, model, resolve_tag_map(labels, options.pos_tag_map), options.pos_batch_size)

    def tag(self, texts: list[str]) -> list[list[str]]:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        tags: list[list[str]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            for i, text_tags in zip(batch, self._tag_batch([texts[i] for i in batch]), strict=True):
                tags[i] = text_tags
        return tags

    def _tag_batch(self, texts: list[str]) -> list[list[str]]:
        import torch

        encoding = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            return_overflowing_tokens=True,
            padding=True,
            return_tensors="pt",
        )
        inputs = {k: v.to(self.device) for k, v in encoding.items() if k in MODEL_INPUTS}
        with torch.inference_mode():
            predicted = self.model(**inputs).logits.argmax(-1).tolist()
        words: list[dict[int, str]] = [{} for _ in texts]
        for chunk, text_index in enumerate(encoding["overflow_to_sample_mapping"].tolist()):
            merge_word_pieces(encoding.word_ids(chunk), [self.upos[p] for p in predicted[chunk]], words[text_index])
        return [[found.get(w, UNTAGGED) for w in range(max(found, default=-1) + 1)] for found in words]
