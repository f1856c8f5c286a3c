"""CC-style English captions with Conceptual Captions' length spread, as many as asked for.

`cc3m_captions.txt` holds the first 100 captions of CC3M's validation file (Google's Conceptual
Captions terms allow any use). New distinct captions join the start of one caption to the end of
another at random cut points, so their words and lengths (2 to about 50 words, mostly 6 to 14) stay
close to the real file's; one in twenty joins two whole captions, for the long tail.
"""

from __future__ import annotations

import random
import statistics
from pathlib import Path

SAMPLE = Path(__file__).with_name("cc3m_captions.txt")


def sample_captions() -> list[str]:
    return [line.strip() for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]


def cc_style_captions(count: int, seed: int = 0) -> list[str]:
    """`count` distinct captions (translation deduplicates, so repeats would not be measured)."""
    lines = [caption.split() for caption in sample_captions()]
    rng = random.Random(seed)
    captions: dict[str, None] = {}
    while len(captions) < count:
        a, b = rng.choice(lines), rng.choice(lines)
        words = [*a, ".", *b] if rng.random() < 0.05 else a[: rng.randint(1, len(a))] + b[rng.randint(0, len(b) - 1) :]
        captions.setdefault(" ".join(words), None)
    return list(captions)


def length_spread(captions: list[str]) -> dict[str, float]:
    """Words per caption: mean, median, 90th percentile, longest."""
    words = sorted(len(c.split()) for c in captions)
    return {
        "words_mean": round(statistics.fmean(words), 1),
        "words_p50": words[len(words) // 2],
        "words_p90": words[int(len(words) * 0.9)],
        "words_max": words[-1],
    }
