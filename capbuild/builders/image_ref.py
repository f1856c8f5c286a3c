"""Image identity across sources (`image_ref`): the same photo gets the same ref in every builder.

    coco:<image id>          COCO 2014/2017 ids and file names, Karpathy's cocoid, XTD10, Multi30k's mscoco split
    flickr:<photo id>        Flickr8k (digits before `_`), Flickr30k / Multi30k (the file stem), staticflickr URLs
    openimages:<id>          Crossmodal-3600 keys
    commons:<file name>      Wikimedia Commons files (WIT, WAP), percent-decoded, spaces as underscores
    url:<normalised URL>     any other web image
    file:<sha1 of the bytes> any other local file

Decontamination matches rows by these strings, so every function here returns the one canonical form.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from capbuild.errors import ConfigError

KINDS = ("coco", "flickr", "openimages", "commons", "url", "file")

# COCO_train2014_000000061844.jpg, 000000061844.jpg, train2014/COCO_..., with an optional #annotation suffix
_COCO_NAME = re.compile(r"(?:^|/)(?:COCO_(?:train|val|test)20\d\d_)?0*(\d+)\.jpe?g(?:#\d+)?$", re.IGNORECASE)
_COCO_HOSTS = ("images.cocodataset.org",)
# Flickr8k: 1258913059_07c613f7ff.jpg; Flickr30k: 1258913059.jpg
_FLICKR_NAME = re.compile(r"^(\d+)(?:_[0-9a-f]+)?\.jpe?g$", re.IGNORECASE)
# farm3.staticflickr.com/2440/3874226718_8b2a9fbc4e_z.jpg, live.staticflickr.com/..., static.flickr.com/...
_FLICKR_HOST = re.compile(r"(^|\.)(static\.?flickr\.com|staticflickr\.com)$")
_FLICKR_PHOTO = re.compile(r"/(\d+)_[0-9a-f]+(?:_[a-z0-9]+)?\.\w+$", re.IGNORECASE)
_WIKIMEDIA_HOST = "upload.wikimedia.org"
_COMMONS_HOST = "commons.wikimedia.org"
_THUMB_SIZE = re.compile(r"^(?:lossy-|lossless-)?(?:page\d+-)?\d+px-")
_OPENIMAGES_ID = re.compile(r"^[0-9a-f]{16}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def coco_ref(value: int | str) -> str:
    """coco:ID from an image id (61844, "61844", "000000061844") or a file name / path / URL
    (COCO_train2014_000000061844.jpg, test_2017_mscoco's COCO_train2014_000000117071.jpg#367178)."""
    text = str(value).strip()
    if text.isdigit():
        return f"coco:{int(text)}"
    match = _COCO_NAME.search(text)
    if match is None:
        raise ConfigError(f"not a COCO image id or file name: {value!r}")
    return f"coco:{int(match.group(1))}"


def flickr_ref(name: str) -> str:
    """flickr:PHOTO_ID from a Flickr8k name (1258913059_07c613f7ff.jpg), a Flickr30k name (1258913059.jpg)
    or a bare photo id."""
    text = Path(str(name).strip().split("#", 1)[0]).name
    if text.isdigit():
        return f"flickr:{int(text)}"
    match = _FLICKR_NAME.match(text)
    if match is None:
        raise ConfigError(f"not a Flickr8k/Flickr30k image name: {name!r}")
    return f"flickr:{int(match.group(1))}"


def openimages_ref(image_id: str) -> str:
    """openimages:ID from an Open Images id (Crossmodal-3600's image/key, 16 hex digits)."""
    text = str(image_id).strip().lower()
    if not _OPENIMAGES_ID.match(text):
        raise ConfigError(f"not an Open Images id (16 hex digits): {image_id!r}")
    return f"openimages:{text}"


def commons_file_name(name: str) -> str:
    """A Commons file name in one form: percent-decoded, `File:` dropped, spaces and underscores as
    one underscore, first letter upper-case (MediaWiki's title rules)."""
    text = unquote(name).strip()
    text = re.sub(r"^(?:File|Image|Datei|Fichier|Archivo):", "", text, flags=re.IGNORECASE)
    text = re.sub(r"[\s_]+", "_", text).strip("_")
    if not text:
        raise ConfigError(f"empty Commons file name: {name!r}")
    return text[0].upper() + text[1:]


def commons_ref(url_or_name: str) -> str:
    """commons:FILE_NAME from an upload.wikimedia.org URL (original or thumbnail), a
    commons.wikimedia.org/wiki/File: page or a bare file name."""
    name = _commons_name(url_or_name) if "://" in url_or_name else url_or_name
    if name is None:
        raise ConfigError(f"not a Wikimedia Commons file URL: {url_or_name!r}")
    return f"commons:{commons_file_name(name)}"


def _commons_name(url: str) -> str | None:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    segments = [s for s in parts.path.split("/") if s]
    if host == _COMMONS_HOST and len(segments) == 2 and segments[0] == "wiki":
        return segments[1]
    if host != _WIKIMEDIA_HOST or len(segments) < 4 or segments[0] != "wikipedia" or segments[1] != "commons":
        return None
    rest = segments[2:]
    if rest[0] == "thumb":  # thumb/a/ab/NAME/220px-NAME
        return rest[3] if len(rest) >= 4 else None
    if rest[0] in ("archive", "temp"):
        return None  # old revisions: another image than the file's current one
    return rest[2] if len(rest) == 3 else None


def normalise_url(url: str) -> str:
    """One spelling of a web URL: scheme and host lower-case, http as https, default port and
    fragment dropped, percent-encoding in one form (the path and query otherwise kept as they are)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"not an http(s) URL: {url!r}")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise ConfigError(f"URL without a host: {url!r}")
    netloc = host if parts.port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{parts.port}"
    path = quote(unquote(parts.path or "/"), safe="/:@!$&'()*+,;=-._~")
    query = quote(unquote(parts.query), safe="=&/:@!$'()*+,;-._~")
    return urlunsplit(("https", netloc, path, query, ""))


def url_ref(url: str) -> str:
    """The ref of a web image: a source's own identity when the URL reveals it (COCO, Flickr,
    Commons), else url:NORMALISED_URL."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host in _COCO_HOSTS and _COCO_NAME.search(parts.path):
        return coco_ref(parts.path)
    if _FLICKR_HOST.search(host):
        photo = _FLICKR_PHOTO.search(parts.path)
        if photo:
            return f"flickr:{int(photo.group(1))}"
    name = _commons_name(url)
    if name is not None:
        return f"commons:{commons_file_name(name)}"
    return f"url:{normalise_url(url)}"


def file_ref(path: str | Path) -> str:
    """file:SHA1 of a local file's bytes (a file:// URL is accepted)."""
    text = str(path)
    local = Path(unquote(text.removeprefix("file://"))) if text.startswith("file://") else Path(text)
    digest = hashlib.sha1()
    with local.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"file:{digest.hexdigest()}"


def image_ref_for_url(url: str) -> str:
    """The ref of an image_url as the caption table holds it: http(s) through url_ref, file:// by content."""
    if url.startswith("file://"):
        return file_ref(url)
    return url_ref(url)


def ref_kind(ref: str) -> str:
    """The kind of a ref (coco, flickr, ...); a ValueError for anything else."""
    kind, sep, value = ref.partition(":")
    if not sep or kind not in KINDS or not value:
        raise ConfigError(f"not an image_ref (KIND:VALUE with KIND one of {', '.join(KINDS)}): {ref!r}")
    return kind


def default_image_ref(image_url: str | None) -> str | None:
    """The ref a row gets when its builder knows no better: from the URL (COCO, Flickr and Commons
    URLs are recognised), or the bytes of a local file; None when there is no URL or no such file."""
    if not image_url:
        return None
    try:
        return image_ref_for_url(image_url)
    except (OSError, ConfigError):
        return None
