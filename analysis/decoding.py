"""Turn a response body into text: charset from the header, else a BOM, else <meta>, else UTF-8.

The order is the one DESIGN.md fixes ("Report field definitions (exact)"). Labels are mapped the
way browsers map them (WHATWG Encoding Standard), e.g. ``iso-8859-1`` decodes as windows-1252.
Labels Python does not know, or that browsers refuse (UTF-7, ...), count as absent.
"""

from __future__ import annotations

import codecs
import re

META_SCAN_BYTES = 1024

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)

# WHATWG label -> the Python codec that decodes what browsers decode for it.
_ALIASES: dict[str, str] = {
    **dict.fromkeys(
        (
            "ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819",
            "iso-8859-1", "iso-ir-100", "iso8859-1", "iso88591", "iso_8859-1",
            "iso_8859-1:1987", "l1", "latin1", "latin-1", "us-ascii", "windows-1252",
            "x-cp1252",
        ),
        "cp1252",
    ),
    **dict.fromkeys(
        ("chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80",
         "gbk", "iso-ir-58", "x-gbk", "gb18030"),
        "gb18030",
    ),
    **dict.fromkeys(
        ("iso-8859-9", "iso8859-9", "iso88599", "iso_8859-9", "latin5", "l5",
         "windows-1254", "csisolatin5", "iso-ir-148"),
        "cp1254",
    ),
    **dict.fromkeys(("tis-620", "iso-8859-11", "iso8859-11", "dos-874", "windows-874"), "cp874"),
    **dict.fromkeys(
        ("euc-kr", "cseuckr", "csksc56011987", "iso-ir-149", "korean", "ks_c_5601-1987",
         "ks_c_5601-1989", "ksc5601", "ksc_5601", "windows-949"),
        "cp949",
    ),
    **dict.fromkeys(
        ("shift_jis", "csshiftjis", "ms932", "ms_kanji", "sjis", "windows-31j", "x-sjis"),
        "cp932",
    ),
    **dict.fromkeys(("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"), "big5hkscs"),
    "unicode-1-1-utf-8": "utf-8",
    "unicode11utf8": "utf-8",
    "unicode20utf8": "utf-8",
    "x-unicode20utf8": "utf-8",
    "utf8": "utf-8",
}

# Python codecs that are no web encoding, or that browsers refuse to use.
_REFUSED = frozenset(
    {"utf-7", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined",
     "utf-32", "utf-32-be", "utf-32-le"}
)

_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^\s;"',]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([^\s"'/>;,]+)""", re.IGNORECASE
)


def codec_for_label(label: str | None) -> str | None:
    """The Python codec name for a charset label, or None when the label is unknown/refused."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if not name or len(name) > 64:
        return None
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if info.name in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def charset_from_content_type(content_type: str | None) -> str | None:
    """The usable codec named by a Content-Type header's charset parameter, if any."""
    if not content_type:
        return None
    match = _HEADER_CHARSET.search(content_type)
    return codec_for_label(match.group(1)) if match else None


def _charset_from_bom(body: bytes) -> tuple[str, int] | None:
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return codec, len(bom)
    return None


def charset_from_meta(body: bytes) -> str | None:
    """The codec declared by <meta charset> (or http-equiv content-type) in the first 1024 bytes."""
    match = _META_CHARSET.search(body[:META_SCAN_BYTES])
    if not match:
        return None
    codec = codec_for_label(match.group(1).decode("ascii", "replace"))
    if codec and codec.startswith("utf-16"):
        # A document whose ASCII <meta> we could read is not UTF-16 (WHATWG prescan rule).
        return "utf-8"
    return codec


def _decode(body: bytes, codec: str) -> str:
    try:
        return body.decode(codec, errors="replace")
    except (LookupError, UnicodeError, ValueError, TypeError):
        return body.decode("utf-8", errors="replace")


def decode_body(body: bytes, content_type: str | None) -> str:
    """Decode a body: header charset, else BOM, else <meta charset> in 1024 bytes, else UTF-8.

    Undecodable bytes become U+FFFD; a leading BOM character never reaches the text.
    """
    codec = charset_from_content_type(content_type)
    start = 0
    if codec is None:
        bom = _charset_from_bom(body)
        if bom is not None:
            codec, start = bom
    if codec is None:
        codec = charset_from_meta(body) or "utf-8"
    text = _decode(body[start:] if start else body, codec)
    return text[1:] if text.startswith("\ufeff") else text
