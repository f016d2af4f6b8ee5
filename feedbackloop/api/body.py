"""Reading request bodies safely: size limit before and after gzip, so a small zip bomb cannot blow memory."""

from __future__ import annotations

import zlib

from fastapi import Request

from tools.events.segment import PayloadError


async def read_limited_body(request: Request, max_bytes: int) -> bytes:
    """The (decompressed) body, or PayloadError 413 once it would exceed `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > max_bytes:
            raise _too_large(len(raw), max_bytes)
    encoding = request.headers.get("content-encoding", "identity").lower().strip()
    if encoding in ("", "identity"):
        return bytes(raw)
    if encoding != "gzip":
        raise PayloadError(
            "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported; use gzip"
        )
    return _gunzip(bytes(raw), max_bytes)


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise PayloadError("invalid_gzip", f"body is not valid gzip: {exc}") from None
    if len(out) > max_bytes or decompressor.unconsumed_tail:
        raise _too_large(len(out), max_bytes, after="decompression")
    if not decompressor.eof:  # zlib returns what it could of a cut-off stream; a route would read it as empty
        raise PayloadError("invalid_gzip", "body is not valid gzip: the stream is truncated")
    return out


def _too_large(size: int, max_bytes: int, after: str = "") -> PayloadError:
    where = f" after {after}" if after else ""
    return PayloadError(
        "payload_too_large",
        f"request body is {size:,}+ bytes{where}; the limit is {max_bytes:,} bytes — send smaller batches",
        status=413,
    )
