"""Publishes a build folder as a Hugging Face dataset repo with huggingface_hub.

What goes up is what a user of the dataset needs: the card, the manifest, the caption table and
the shards with sizes.json. What stays local: rejected/ (it may hold what was filtered out on
purpose), img2dataset's per-shard status files, work folders and anything else in OUT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, get_token

from capbuild.cards.card import CARD_NAME, make_card, write_card
from capbuild.cards.facts import load_facts
from capbuild.cards.public import public_manifest
from capbuild.errors import CapbuildError, ConfigError, InputError
from capbuild.layout import BuildLayout
from capbuild.manifest import MANIFEST_NAME
from capbuild.table import part_files


@dataclass(frozen=True)
class UploadFile:
    """One file to upload: its path in the repo (relative to OUT) and its size in bytes."""

    path: str
    size: int


def upload_files(out: Path) -> list[UploadFile]:
    """The files of a finished build that go to the Hub, in upload order (small records first)."""
    facts = load_facts(out)
    images_planned = facts.manifest["config"].get("images") is not None
    if images_planned and not facts.manifest["stages"].get("images", {}).get("done"):
        raise ConfigError(f"{out}: the image stage is not finished; re-run the build command to resume it")
    paths = BuildLayout(out)
    if not paths.card.exists():
        write_card(out)
    files = [paths.card, paths.manifest, *part_files(paths.captions)]
    if facts.has_shards:
        files += [paths.sizes, *(paths.shards / name for name in sorted(facts.sizes))]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise InputError(f"{out} lacks {', '.join(missing)}; re-run the build command to complete it")
    return [UploadFile(p.relative_to(out).as_posix(), p.stat().st_size) for p in files]


def public_records(out: Path, root: Path | None = None) -> dict[str, bytes]:
    """The card and manifest as they are uploaded: local paths relative to `root`, or file names only."""
    facts = load_facts(out)
    manifest = json.dumps(public_manifest(facts.manifest, root), indent=2, ensure_ascii=False) + "\n"
    return {CARD_NAME: str(make_card(facts, root)).encode(), MANIFEST_NAME: manifest.encode()}


def publish(out: Path, repo: str, private: bool = False, root: Path | None = None) -> str:
    """Create the dataset repo (if needed) and upload the build; returns the repo's URL.

    The token is huggingface_hub's own (HF_TOKEN, or `hf auth login`); capbuild never reads it
    beyond asking whether one exists. A re-run resumes: files already on the Hub are skipped.
    """
    files = upload_files(out)
    if get_token() is None:
        raise CapbuildError("no Hugging Face token: set HF_TOKEN or run `hf auth login`, then publish again")
    records = public_records(out, root)
    operations = [
        CommitOperationAdd(f.path, records[f.path] if f.path in records else str(out / f.path)) for f in files
    ]
    api = HfApi()
    try:
        url = api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
        api.create_commit(
            repo_id=repo,
            repo_type="dataset",
            operations=operations,
            commit_message=f"capbuild: publish build {load_facts(out).manifest.get('fingerprint', '')}",
        )
    except OSError as err:  # huggingface_hub's HTTP, connection and offline-mode errors
        raise CapbuildError(
            f"publishing to datasets/{repo} failed: {err}. Check the repo name, your token's write access and "
            "the network; the same command resumes where it stopped."
        ) from err
    return str(url)


def human_size(size: float) -> str:
    """1536 -> '1.5 KB'."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"
