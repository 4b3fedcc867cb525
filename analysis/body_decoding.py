"""Remove Content-Encoding (gzip, deflate) from a byte stream without ever holding more than
a bounded amount of output: a small compressed body cannot expand into a memory bomb.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

STEP = 64 * 1024
SUPPORTED_ENCODINGS = ("gzip", "x-gzip", "deflate", "identity")


class BodyTooLarge(Exception):
    """The (decoded) body went over the byte limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body exceeds {limit} bytes")
        self.limit = limit


class BadEncoding(Exception):
    """The body could not be decoded as its Content-Encoding claims."""


def parse_encodings(header: str | None) -> list[str]:
    """Content-Encoding values in the order they were applied, 'identity' dropped.

    Raises BadEncoding for an encoding we cannot remove.
    """
    encodings = [part.strip().lower() for part in (header or "").split(",") if part.strip()]
    encodings = [enc for enc in encodings if enc != "identity"]
    for enc in encodings:
        if enc not in SUPPORTED_ENCODINGS:
            raise BadEncoding(f"unsupported content-encoding {enc!r}")
    return encodings


def _drain(decoder: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    """Feed ``data`` and yield output in pieces of at most STEP bytes."""
    while True:
        out = decoder.decompress(data, STEP)
        if out:
            yield out
        data = decoder.unconsumed_tail
        if decoder.eof or (not data and not out):
            return


def _inflate(chunks: Iterable[bytes], wbits: int, multi_member: bool) -> Iterator[bytes]:
    decoder = zlib.decompressobj(wbits)
    for chunk in chunks:
        data = chunk
        while data:
            yield from _drain(decoder, data)
            data = b""
            if decoder.eof:
                rest = decoder.unused_data
                if not (multi_member and rest.strip(b"\x00")):
                    break
                decoder = zlib.decompressobj(wbits)
                data = rest
    if not decoder.eof:
        tail = decoder.flush(STEP)
        if tail:
            yield tail


def _gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    try:
        yield from _inflate(chunks, 16 + zlib.MAX_WBITS, multi_member=True)
    except zlib.error as exc:
        raise BadEncoding(f"invalid gzip body: {exc}") from exc


def _deflate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """zlib-wrapped deflate as the RFC says, or raw deflate as some servers send."""
    iterator = iter(chunks)
    first = b""
    for chunk in iterator:
        if chunk:
            first = chunk
            break
    if not first:
        return

    def replay() -> Iterator[bytes]:
        yield first
        yield from iterator

    probe = zlib.decompressobj(zlib.MAX_WBITS)
    try:
        probe.decompress(first[:64], 1)
        wbits = zlib.MAX_WBITS
    except zlib.error:
        wbits = -zlib.MAX_WBITS
    try:
        yield from _inflate(replay(), wbits, multi_member=False)
    except zlib.error as exc:
        raise BadEncoding(f"invalid deflate body: {exc}") from exc


def decode_stream(
    chunks: Iterable[bytes], encodings: list[str], max_bytes: int, *, truncate: bool = False
) -> bytes:
    """Undo ``encodings`` (as from :func:`parse_encodings`) over raw ``chunks``.

    Raises BodyTooLarge as soon as the raw or the decoded size passes ``max_bytes`` (with
    ``truncate``: returns the first ``max_bytes`` instead), and BadEncoding for corrupt data.
    """
    raw_total = 0

    def counted_raw() -> Iterator[bytes]:
        nonlocal raw_total
        for chunk in chunks:
            raw_total += len(chunk)
            if raw_total > max_bytes and not truncate:
                raise BodyTooLarge(max_bytes)
            yield chunk

    stream: Iterable[bytes] = counted_raw()
    for enc in reversed(encodings):
        stream = _gunzip(stream) if enc in ("gzip", "x-gzip") else _deflate(stream)
    parts: list[bytes] = []
    total = 0
    for piece in stream:
        total += len(piece)
        if total > max_bytes:
            if not truncate:
                raise BodyTooLarge(max_bytes)
            parts.append(piece[: len(piece) - (total - max_bytes)])
            break
        parts.append(piece)
    return b"".join(parts)


def gunzip_bounded(data: bytes, max_bytes: int) -> bytes:
    """Decompress a whole gzip file (e.g. ``sitemap.xml.gz``) up to ``max_bytes`` of output."""
    return decode_stream([data], ["gzip"], max_bytes)
