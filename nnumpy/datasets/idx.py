"""The IDX file format of MNIST and its relatives: reading and writing.

Layout (all integers big-endian)::

    byte 0, 1   0x00 0x00
    byte 2      type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64
    byte 3      number of dimensions d >= 1
    then        d sizes, uint32 each
    then        prod(sizes) values of the type, C order

Files may be gzip-compressed; compression is recognised by the gzip magic
bytes, never by the file name.  Every defect raises :class:`IDXFormatError`
naming the file, and the payload length is checked against the header
before an array is made from it, so a tiny file declaring a huge array
fails at once.  Decompression stops as soon as the output would exceed what
the header declares (or ``max_bytes``): no gzip bomb fills the memory.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from .._fileio import atomic_write

__all__ = ["read_idx", "write_idx", "parse_idx", "decompress_idx", "IDXFormatError", "IDX_TYPES"]

#: IDX type code -> big-endian NumPy dtype.
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22                 # decompress at most 4 MiB of output at a time
DEFAULT_MAX_BYTES = 1 << 33      # 8 GiB: far above any MNIST-family file


class IDXFormatError(ValueError):
    """The data is not a well-formed IDX file (the message names the file and the defect)."""


def _parse_header(head, name, total=None, max_bytes=DEFAULT_MAX_BYTES):
    """Validate the header in ``head``; return (dtype, shape, header_len, payload_len)."""
    if len(head) < 4:
        raise IDXFormatError(f"{name}: {len(head)} byte(s) is too short for an IDX header (4 bytes at least)")
    if head[0] != 0 or head[1] != 0:
        raise IDXFormatError(f"{name}: bad leading bytes 0x{head[0]:02x} 0x{head[1]:02x}, an IDX file "
                             f"starts with two zero bytes (not an IDX file?)")
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{code:02x} (known: "
                             + ", ".join(f"0x{c:02x}" for c in IDX_TYPES) + ")")
    if ndim == 0:
        raise IDXFormatError(f"{name}: the header declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise IDXFormatError(f"{name}: truncated header: {ndim} dimensions need {header_len} bytes, "
                             f"the data has {len(head)}")
    shape = struct.unpack(f">{ndim}I", bytes(head[4:header_len]))
    count, extent = 1, IDX_TYPES[code].itemsize
    for s in shape:
        count *= s                  # Python ints: no overflow
        extent *= max(s, 1)
    if extent > np.iinfo(np.intp).max:     # NumPy cannot even describe such a shape (zero-sized or not)
        raise IDXFormatError(f"{name}: the header declares shape {shape}, too large for any array")
    payload_len = count * IDX_TYPES[code].itemsize
    if total is not None and total != header_len + payload_len:
        what = "truncated" if total < header_len + payload_len else "trailing bytes"
        raise IDXFormatError(f"{name}: {what}: the header declares shape {shape} of "
                             f"{IDX_TYPES[code].name.lstrip('>')} ({header_len + payload_len:,} bytes "
                             f"with the header), the data has {total:,} bytes")
    if payload_len > max_bytes:
        raise IDXFormatError(f"{name}: the header declares shape {shape} ({payload_len:,} bytes), more "
                             f"than the limit of {max_bytes:,} bytes")
    return IDX_TYPES[code], shape, header_len, payload_len


def _gunzip_bounded(data, name, max_bytes):
    """Decompress gzip ``data``, stopping once the output passes what the IDX
    header inside declares.  Returns the IDX bytes (exact length checked by
    the caller)."""
    out = bytearray()
    limit = None                    # the full IDX size, once the header is known
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    src = bytes(data)
    try:
        while True:
            cap = _CHUNK if limit is None else min(max(limit + 1 - len(out), 1), _CHUNK)
            chunk = d.decompress(src, cap)
            out += chunk
            src = d.unconsumed_tail
            if limit is None and len(out) >= 4 and len(out) >= 4 + 4 * out[3]:
                _, _, hl, pl = _parse_header(out, name, max_bytes=max_bytes)
                limit = hl + pl
            if limit is not None and len(out) > limit:
                raise IDXFormatError(f"{name}: trailing bytes: the decompressed data is longer than "
                                     f"the {limit:,} bytes its header declares")
            if d.eof:
                rest = d.unused_data
                if not rest:
                    break
                if rest[:2] != _GZIP_MAGIC:
                    raise IDXFormatError(f"{name}: {len(rest)} byte(s) of garbage after the gzip stream")
                d, src = zlib.decompressobj(16 + zlib.MAX_WBITS), rest   # a further gzip member
            elif not src and not chunk:
                raise IDXFormatError(f"{name}: the gzip stream is truncated (it ends before its end marker)")
    except zlib.error as e:
        raise IDXFormatError(f"{name}: corrupt gzip data ({e})") from None
    return out


def decompress_idx(data, name="<bytes>", max_bytes=DEFAULT_MAX_BYTES):
    """The uncompressed IDX bytes of ``data``: gunzipped (bounded by the
    header it contains) when it starts with the gzip magic, else as is."""
    if bytes(data[:2]) == _GZIP_MAGIC:
        return bytes(_gunzip_bounded(data, name, max_bytes))
    return bytes(data)


def parse_idx(raw, name="<bytes>", max_bytes=DEFAULT_MAX_BYTES):
    """Parse uncompressed IDX bytes into a native-endian, writable array."""
    dtype, shape, header_len, _ = _parse_header(raw, name, total=len(raw), max_bytes=max_bytes)
    arr = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))          # native byte order, a writable copy


def read_idx(source, max_bytes=DEFAULT_MAX_BYTES):
    """Read an IDX file (a path, or the file's bytes), gzip-compressed or not.

    Returns a native-endian, writable NumPy array of the declared shape.
    Raises :class:`IDXFormatError` for any malformed input, and
    ``FileNotFoundError`` for a missing path.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, data = "<bytes>", bytes(source)
    else:
        name = os.fspath(source)
        with open(name, "rb") as f:
            data = f.read()
    return parse_idx(decompress_idx(data, name, max_bytes), name, max_bytes)


def write_idx(array, path, compress=None):
    """Write ``array`` as an IDX file at ``path``; gzip-compressed when
    ``compress`` is true (None: when the name ends in ".gz").

    Supported dtypes: uint8, int8, int16, int32, float32, float64, with 1 to
    255 dimensions.  Written to a temporary file and renamed into place.
    """
    arr = np.asarray(array)
    dt = arr.dtype.newbyteorder("=") if arr.dtype.byteorder not in ("=", "|") else arr.dtype
    code = _CODES.get(np.dtype(dt))
    if code is None:
        raise ValueError(f"write_idx: IDX cannot store dtype {arr.dtype}; use one of "
                         "uint8, int8, int16, int32, float32, float64")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: IDX stores 1 to 255 dimensions, the array has {arr.ndim}")
    if any(s >= 2 ** 32 for s in arr.shape):
        raise ValueError(f"write_idx: dimension sizes must be below 2**32, got {arr.shape}")
    payload = (struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
               + np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes())
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, mtime=0)
    with atomic_write(path, prefix=".idx-") as f:
        f.write(payload)
    return path
