"""`TextOptions`: every build-wide option of the text stage's steps, declared once as dataclass fields.

The CLI generates the build commands' POS, language and translation options from these fields;
`make_plan` hands each step the fields it needs. Operational fields (workers, batch sizes, devices,
cache paths, progress, error budgets) never reach the build's fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from capbuild.options import opt


@dataclass(frozen=True)
class TextOptions:
    """The options of the text stage's steps that are not part of a step's own spec."""

    decontaminate: list[str] = field(
        default_factory=list,
        metadata=opt(
            "Evaluation set to keep out (a build folder, or a file of image_refs one a line); repeatable. Its "
            "images' rows are dropped before any download, to rejected/ (filter decontaminate)."
        ),
    )
    pos_backend: str = field(
        default="spacy",
        metadata=opt("POS tagger of --filter propn=R: spacy, stanza (Indonesian, Arabic, ...) or hf (transformers)."),
    )
    pos_model: str | None = field(
        default=None,
        metadata=opt(
            "spaCy pipeline or transformers model (name or path); default: the language's spaCy *_sm pipeline."
        ),
    )
    pos_model_dir: str | None = field(
        default=None, metadata=opt("Stanza resources folder (default: $STANZA_RESOURCES_DIR, then ~/stanza_resources).")
    )
    pos_tag_map: str | None = field(
        default=None,
        metadata=opt("JSON file {model label: UPOS tag} for an hf model whose labels are neither UPOS nor CAMeL's."),
    )
    pos_workers: int = field(
        default=1,
        metadata=opt(
            "spaCy tagging processes, forked once the model is loaded (not spaCy's n_process); 2,000+ captions each.",
            operational=True,
        ),
    )
    pos_batch_size: int = field(default=256, metadata=opt("Captions per POS tagging batch.", operational=True))
    propn_denominator: str = field(
        default="words",
        metadata=opt("propn ratio over 'words' (punctuation, symbols, spaces not counted) or 'all' tokens."),
    )
    lang_candidates: str | None = field(
        default=None,
        metadata=opt(
            "Languages --filter lang may detect: 'it,en,fr' replaces the default set, '+ms,az' widens it, 'all'."
        ),
    )
    max_errors: float = field(
        default=0.01,
        metadata=opt(
            "Share of a model step's captions (propn, lang) that may break the model (each one rejected with its "
            "error) before the build stops.",
            operational=True,
        ),
    )
    translate: bool = field(default=False, metadata=opt("Translate the captions from --src-lang into --lang."))
    mt_model: str | None = field(default=None, metadata=opt("CTranslate2 model folder (capbuild translate convert)."))
    src_lang: str = field(default="en", metadata=opt("Language of the source captions when translating."))
    beam_size: int = field(default=1, metadata=opt("Beam size (1: greedy)."))
    mt_batch_tokens: int | None = field(
        default=None, metadata=opt("Tokens a batch (8192 GPU, 2048 CPU).", operational=True)
    )
    mt_devices: str = field(
        default="auto", metadata=opt("'auto' (all GPUs, else CPU), 'cpu', or GPU indices: 0,1.", operational=True)
    )
    mt_compute_type: str | None = field(default=None, metadata=opt("Default int8_float16 on GPU, int8 on CPU."))
    mt_cache: str | None = field(
        default=None, metadata=opt("Translation cache folder (default: user cache dir).", operational=True)
    )
    mt_repetition_penalty: float = field(default=1.0, metadata=opt("Penalty (>1) on repeated tokens."))
    mt_no_repeat_ngram: int = field(default=0, metadata=opt("Forbid repeated n-grams of this size."))
    mt_max_errors: float = field(
        default=0.01,
        metadata=opt(
            "Share of captions the model may fail on (rejected as mt_error) before the build stops.", operational=True
        ),
    )
    mt_max_foreign_script: float = field(
        default=0.5,
        metadata=opt(
            "Reject a translation (wrong_script) with more of its letters than this outside the target's script."
        ),
    )
    mt_progress: bool = field(
        default=True, metadata=opt("Show the translation progress bar.", operational=True, cli=False)
    )

    def source_lang(self, lang: str) -> str:
        """The language the builder's captions are in: --src-lang when translating into `lang`, else `lang`."""
        return self.src_lang if self.translate else lang
