"""Wikimedia Commons' language prefixes in WIT's attribution descriptions.

Commons renders each language of a file description as "Name: text", and WIT keeps them:
"English: Coin of Ukraine Русский: Юбилейная монета Украины". `strip_language_prefixes` keeps the
part written in the row's language (or the first part) without its prefix.
"""

from __future__ import annotations

import re

# Names as Commons' {{lang|...}} templates render them (the language's own name), plus English names.
LANGUAGE_NAMES: dict[str, str] = {
    "Afrikaans": "af",
    "Asturianu": "ast",
    "Azərbaycanca": "az",
    "Bahasa Indonesia": "id",
    "Bahasa Melayu": "ms",
    "Basa Jawa": "jv",
    "Bosanski": "bs",
    "Brezhoneg": "br",
    "Català": "ca",
    "Cebuano": "ceb",
    "Čeština": "cs",
    "Cymraeg": "cy",
    "Dansk": "da",
    "Deutsch": "de",
    "Eesti": "et",
    "English": "en",
    "Español": "es",
    "Esperanto": "eo",
    "Euskara": "eu",
    "Français": "fr",
    "Frysk": "fy",
    "Gaeilge": "ga",
    "Galego": "gl",
    "Hrvatski": "hr",
    "Interlingua": "ia",
    "Italiano": "it",
    "Kiswahili": "sw",
    "Kurdî": "ku",
    "Latina": "la",
    "Latviešu": "lv",
    "Lietuvių": "lt",
    "Lëtzebuergesch": "lb",
    "Magyar": "hu",
    "Malti": "mt",
    "Nederlands": "nl",
    "Norsk bokmål": "nb",
    "Norsk nynorsk": "nn",
    "Norsk": "no",
    "Occitan": "oc",
    "O\u02bbzbekcha": "uz",
    "Polski": "pl",
    "Português": "pt",
    "Română": "ro",
    "Shqip": "sq",
    "Slovenčina": "sk",
    "Slovenščina": "sl",
    "Srpskohrvatski": "sh",
    "Suomi": "fi",
    "Svenska": "sv",
    "Tagalog": "tl",
    "Tiếng Việt": "vi",
    "Türkçe": "tr",
    "Íslenska": "is",
    "Ελληνικά": "el",
    "Беларуская": "be",
    "Български": "bg",
    "Қазақша": "kk",
    "Македонски": "mk",
    "Монгол": "mn",
    "Русский": "ru",
    "Српски / srpski": "sr",
    "Српски": "sr",
    "Татарча": "tt",
    "Тоҷикӣ": "tg",
    "Українська": "uk",
    "Հայերեն": "hy",
    "עברית": "he",
    "اردو": "ur",
    "العربية": "ar",
    "فارسی": "fa",
    "مصرى": "arz",
    "हिन्दी": "hi",
    "मराठी": "mr",
    "বাংলা": "bn",
    "ਪੰਜਾਬੀ": "pa",
    "தமிழ்": "ta",
    "తెలుగు": "te",
    "ಕನ್ನಡ": "kn",
    "മലയാളം": "ml",
    "සිංහල": "si",
    "ไทย": "th",
    "ქართული": "ka",
    "한국어": "ko",
    "日本語": "ja",
    "中文": "zh",
    "中文\uff08简体\uff09": "zh",
    "中文\uff08繁體\uff09": "zh",
    "粵語": "yue",
    # English names, which some uploaders type by hand.
    "Arabic": "ar",
    "Chinese": "zh",
    "Dutch": "nl",
    "French": "fr",
    "German": "de",
    "Indonesian": "id",
    "Italian": "it",
    "Japanese": "ja",
    "Korean": "ko",
    "Persian": "fa",
    "Polish": "pl",
    "Portuguese": "pt",
    "Russian": "ru",
    "Spanish": "es",
    "Swedish": "sv",
    "Turkish": "tr",
    "Ukrainian": "uk",
}
# WIT writes a few languages with older codes than Commons' templates.
CODE_ALIASES = {"iw": "he", "zh-TW": "zh", "sr-Latn": "sr", "nb": "no"}

_NAMES = sorted(LANGUAGE_NAMES, key=len, reverse=True)
PREFIX = re.compile(r"(?:^|(?<=\s))(" + "|".join(re.escape(n) for n in _NAMES) + r"):\s*")


def strip_language_prefixes(text: str, lang: str) -> tuple[str, bool]:
    """The part of `text` in `lang` (else the first part), without Commons' "Name:" prefixes.

    Returns (text, whether a prefix was found). Text with no known prefix comes back unchanged.
    """
    matches = list(PREFIX.finditer(text))
    if not matches:
        return text, False
    wanted = CODE_ALIASES.get(lang, lang)
    parts: list[tuple[str | None, str]] = []
    head = text[: matches[0].start()].strip()
    if head:
        parts.append((None, head))
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = text[match.end() : end].strip()
        if body:
            code = LANGUAGE_NAMES[match.group(1)]
            parts.append((CODE_ALIASES.get(code, code), body))
    if not parts:
        return "", True
    chosen = next((body for code, body in parts if code == wanted), parts[0][1])
    return chosen, True
