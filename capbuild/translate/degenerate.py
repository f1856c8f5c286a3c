"""Degenerate machine translations: empty output, repeated-token loops, absurd length ratios."""

from __future__ import annotations

import re

LOOP_REPEATS = 4  # an n-gram (n <= 4) repeated this many times in a row is a loop
LOOP_MAX_N = 4
CHAR_RUN = 10  # a character repeated this many times in a row (scripts without spaces)
MIN_UNIQUE_SHARE = 0.3  # of the words of an output of at least 8 words
RATIO_MIN_CHARS = 20  # length ratios are judged once source or output has this many characters
RATIO_RANGE = (0.15, 4.0)  # output characters / source characters
_CHAR_RUN = re.compile(rf"(.)\1{{{CHAR_RUN - 1},}}")


def degenerate(source: str, output: str) -> tuple[str, str]:
    """('', '') for a plausible translation, else (reason, detail): ('empty', ''),
    ('loop', "'cane' x5"), ('length_ratio', '4.50')."""
    text = output.strip()
    if not text:
        return "empty", ""
    loop = _loop(text)
    if loop:
        return "loop", loop
    longest = max(len(source), len(text))
    if longest >= RATIO_MIN_CHARS and source:
        ratio = len(text) / len(source)
        if not RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]:
            return "length_ratio", f"{ratio:.2f}"
    return "", ""


def degenerate_reason(source: str, output: str) -> str:
    """'' for a plausible translation, else 'reason: detail' ('empty', 'loop: ...', 'length_ratio: 4.50')."""
    reason, detail = degenerate(source, output)
    return f"{reason}: {detail}" if detail else reason


def is_loop(output: str) -> bool:
    return bool(output.strip()) and bool(_loop(output.strip()))


def _loop(text: str) -> str:
    run = _CHAR_RUN.search(text)
    if run:
        return f"{run.group(1)!r} x{len(run.group(0))}"
    words = text.split()
    for n in range(1, LOOP_MAX_N + 1):
        for start in range(len(words) - n * LOOP_REPEATS + 1):
            gram = words[start : start + n]
            repeats = 1
            while words[start + repeats * n : start + (repeats + 1) * n] == gram:
                repeats += 1
            if repeats >= LOOP_REPEATS:
                return f"{' '.join(gram)!r} x{repeats}"
    if len(words) >= 8 and len(set(words)) / len(words) < MIN_UNIQUE_SHARE:
        return f"{len(set(words))} distinct of {len(words)} words"
    return ""
