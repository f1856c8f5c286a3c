"""Checks of machine-translated output beyond degeneration (the faults AraCLIP counted in ~1M
translated captions): the wrong script, quotes or brackets left open, and a copied source.

Each check is a pure function of (source, output, ...) returning '' for a pass, else a short detail;
`judge` runs them after the degeneration checks and names the first that fails."""

from __future__ import annotations

import unicodedata

import regex

from capbuild.translate.degenerate import degenerate

MAX_FOREIGN_SCRIPT = 0.5  # share of an output's letters outside its language's scripts that is still accepted

# Every reason `judge` gives, in the order it tries them.
REASONS = ("empty", "loop", "length_ratio", "untranslated", "wrong_script", "unbalanced_quotes")

# ISO 639-1 -> the Unicode scripts (Script_Extensions names) a language is written in, for the
# languages not written in Latin script. A language missing here is not judged by `wrong_script`.
EXPECTED_SCRIPTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("ar", "fa", "ur", "ps", "sd", "ug", "ckb", "ks"), ("Arabic",)),
    **dict.fromkeys(("he", "yi"), ("Hebrew",)),
    **dict.fromkeys(("ru", "uk", "bg", "be", "mk", "kk", "ky", "tg", "mn", "tt", "ba", "cv", "os"), ("Cyrillic",)),
    "sr": ("Cyrillic", "Latin"),
    "el": ("Greek",),
    **dict.fromkeys(("hi", "mr", "ne", "sa", "mai"), ("Devanagari",)),
    **dict.fromkeys(("bn", "as"), ("Bengali",)),
    "pa": ("Gurmukhi",),
    "gu": ("Gujarati",),
    "or": ("Oriya",),
    "ta": ("Tamil",),
    "te": ("Telugu",),
    "kn": ("Kannada",),
    "ml": ("Malayalam",),
    "si": ("Sinhala",),
    "th": ("Thai",),
    "lo": ("Lao",),
    "km": ("Khmer",),
    "my": ("Myanmar",),
    "ka": ("Georgian",),
    "hy": ("Armenian",),
    **dict.fromkeys(("am", "ti"), ("Ethiopic",)),
    **dict.fromkeys(("bo", "dz"), ("Tibetan",)),
    "dv": ("Thaana",),
    "zh": ("Han",),
    "ja": ("Han", "Hiragana", "Katakana"),
    "ko": ("Hangul", "Han"),
}
# Scripts a foreign share is reported in (the first that matches most of the foreign letters).
_NAMED_SCRIPTS = ("Latin", *sorted({s for scripts in EXPECTED_SCRIPTS.values() for s in scripts} - {"Latin"}))
_LETTER = regex.compile(r"\p{L}")
_LATIN_WORD = regex.compile(r"[\p{Latin}\p{M}]+")
_SCRIPT = {name: regex.compile(rf"\p{{scx={name}}}") for name in _NAMED_SCRIPTS}
_WORD = regex.compile(r"[\p{L}\p{N}]+")

# Marks that must come in pairs: (opening, closing) matched in order, and marks whose count must be
# even (the same character opens and closes; German „…“ and English “…” share “). Brackets: ( ) [ ]
# and the CJK ones (fullwidth parentheses, corner, white corner, double angle, lenticular).
_BRACKETS = (("(", ")"), ("[", "]"), ("\uff08", "\uff09"), ("\u300c", "\u300d"), ("\u300e", "\u300f"),
             ("\u300a", "\u300b"), ("\u3010", "\u3011"))  # fmt: skip
_GUILLEMETS = ("\u00ab", "\u00bb")  # « » (some languages write »…«: only the counts must match)
_PAIRED_BY_COUNT = ('"', "\u201e\u201c\u201d")  # straight double quote; „ “ ” together


def expected_scripts(lang: str) -> tuple[str, ...] | None:
    """The scripts `lang` (ISO 639-1, or a tag such as 'zh-Hant' / 'pt_BR') is written in, or None
    for a Latin-script or unknown language."""
    return EXPECTED_SCRIPTS.get(regex.split(r"[-_]", lang.lower())[0])


def foreign_script_share(source: str, output: str, scripts: tuple[str, ...]) -> tuple[float, str]:
    """(share, script): the share of the output's letters outside `scripts` and the script most of
    those are in. Latin-script words that also occur in the source (names, brands) are not counted."""
    kept_latin = {w.casefold() for w in _LATIN_WORD.findall(source)}
    judged = _LATIN_WORD.sub(lambda m: " " if m.group().casefold() in kept_latin else m.group(), output)
    letters = _LETTER.findall(judged)
    if not letters:
        return 0.0, ""
    foreign = [c for c in letters if not any(_SCRIPT[s].match(c) for s in scripts)]
    if not foreign:
        return 0.0, ""
    counts = {name: sum(1 for c in foreign if pattern.match(c)) for name, pattern in _SCRIPT.items()}
    script = max(counts, key=lambda name: counts[name]) if any(counts.values()) else "other"
    return len(foreign) / len(letters), script


def wrong_script(source: str, output: str, target_lang: str, max_foreign: float = MAX_FOREIGN_SCRIPT) -> str:
    """'' unless the target has its own script and more than `max_foreign` of the output's letters
    are in another one; then e.g. '0.83 Latin'."""
    scripts = expected_scripts(target_lang)
    if scripts is None:
        return ""
    share, script = foreign_script_share(source, output, scripts)
    return f"{share:.2f} {script}" if share > max_foreign else ""


def unbalanced_marks(text: str) -> list[str]:
    """The quote and bracket marks of `text` left unpaired, e.g. ['«', '(']."""
    found: list[str] = []
    for opening, closing in _BRACKETS:
        depth = 0
        for char in text:
            if char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
                if depth < 0:
                    break
        if depth:
            found.append(opening if depth > 0 else closing)
    left, right = (text.count(mark) for mark in _GUILLEMETS)
    if left != right:
        found.append(_GUILLEMETS[0] if left > right else _GUILLEMETS[1])
    for marks in _PAIRED_BY_COUNT:
        if sum(text.count(mark) for mark in marks) % 2:
            found.append(next(c for c in text if c in marks))
    return found


def unbalanced_quotes(source: str, output: str) -> str:
    """'' unless the output leaves a quote or bracket unpaired where the source left none; then the
    unpaired marks, e.g. '« ('."""
    if source and unbalanced_marks(source):
        return ""
    return " ".join(unbalanced_marks(output))


def comparable(text: str) -> str:
    """Text reduced for comparison: NFKC, case-folded, its words (letters and digits) only."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def untranslated(source: str, output: str) -> bool:
    """Whether the output is the source copied (equal after `comparable`); a source without letters
    (a number, a date) may translate to itself."""
    return bool(_LETTER.search(source)) and comparable(source) == comparable(output)


def judge(source: str, output: str, target_lang: str, max_foreign: float = MAX_FOREIGN_SCRIPT) -> tuple[str, str]:
    """('', '') for an acceptable translation of `source`, else (reason, detail) for the first of
    REASONS that applies, e.g. ('wrong_script', '0.83 Latin')."""
    reason, detail = degenerate(source, output)
    if reason:
        return reason, detail
    if untranslated(source, output):
        return "untranslated", ""
    detail = wrong_script(source, output, target_lang, max_foreign)
    if detail:
        return "wrong_script", detail
    detail = unbalanced_quotes(source, output)
    if detail:
        return "unbalanced_quotes", detail
    return "", ""


def verdict(reason: str, detail: str) -> str:
    """How a rejected row records a reason: 'reason: detail' (or the reason alone)."""
    return f"{reason}: {detail}" if detail else reason
