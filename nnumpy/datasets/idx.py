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
naming the file.

Memory is bounded by what the file really holds.  The header is read (and
decompressed) first, on its own, and checked before anything is allocated:
a declared size above ``max_bytes`` is refused at once, and so is one that
the data cannot hold (an uncompressed file of another length; a gzip file
declaring more than deflate's 1032:1 ratio allows).  The result array is
then allocated once and the data is read (or decompressed, 4 MiB at a
time) straight into it, so the peak is the array plus a few MiB, never
twice the payload.  Decompression stops as soon as the output would exceed
what the header declares: a gzip that holds more than it declares ("trailing
bytes"), or less ("truncated"), is an IDXFormatError, and no gzip bomb fills
the memory.  (The array is allocated for the declared size before the data
is known to fill it; the system commits its pages only as they are written,
so a file that holds less costs what it holds.)
"""
from __future__ import annotations

import gzip
import hashlib
import numbers
import os
import stat
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
_CHUNK = 1 << 22                 # decompress (or copy) at most 4 MiB at a time
_READ = 1 << 20                  # read compressed input 1 MiB at a time
_MAX_RATIO = 1032                # deflate never expands more than 1032:1 (258 bytes in 2 bits)
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
    if ndim > 64:
        raise IDXFormatError(f"{name}: the header declares {ndim} dimensions; NumPy arrays have at most 64")
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


# -- reading: bounded pieces from a file or a buffer ---------------------------------------

class _Input:
    """The bytes of a file (a path) or of a buffer, handed out in bounded
    pieces; ``size`` is the total when known (a regular file or a buffer)."""

    def __init__(self, source):
        self._pending = b""
        self._file = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            mv = memoryview(source)
            if mv.ndim != 1 or mv.format not in ("B", "b", "c"):
                mv = mv.cast("B")
            self.name, self._mv, self._pos, self.size = "<bytes>", mv, 0, mv.nbytes
        else:
            self.name = os.fspath(source)
            self._file = open(self.name, "rb")       # FileNotFoundError, IsADirectoryError, PermissionError
            st = os.fstat(self._file.fileno())
            self.size = st.st_size if stat.S_ISREG(st.st_mode) else None

    def close(self):
        if self._file is not None:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def unread(self, data):
        self._pending = bytes(data) + self._pending

    def read(self, n):
        """Up to ``n`` bytes (fewer only at the end); b"" at the end."""
        if self._pending:
            out, self._pending = self._pending[:n], self._pending[n:]
            return out
        if self._file is not None:
            return self._file.read(n)
        out = self._mv[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def readinto(self, mv):
        """Fill (part of) the writable memoryview ``mv``; returns the byte count (0 at the end)."""
        if self._pending:
            out = self.read(len(mv))
            mv[:len(out)] = out
            return len(out)
        if self._file is not None:
            return self._file.readinto(mv) or 0
        out = self.read(len(mv))
        mv[:len(out)] = out
        return len(out)


class _Gunzip:
    """The decompressed bytes of a gzip stream (several members allowed), in
    pieces of at most the size asked for; every defect is an IDXFormatError."""

    def __init__(self, inp, name):
        self.inp, self.name = inp, name
        self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.tail = b""
        self.in_eof = False
        self.done = False

    def _more(self, n=_READ):
        data = self.inp.read(n)
        if not data:
            self.in_eof = True
        return bytes(data)

    def read(self, n):
        """Up to ``n`` decompressed bytes; b"" only at the verified end of the last member."""
        try:
            while not self.done:
                if self.d.eof:
                    rest = self.d.unused_data
                    while len(rest) < 2 and not self.in_eof:
                        rest += self._more()
                    if not rest:
                        self.done = True
                        break
                    if rest[:2] != _GZIP_MAGIC:
                        raise IDXFormatError(f"{self.name}: garbage after the gzip stream (it does not start "
                                             f"a further gzip member)")
                    self.d, self.tail = zlib.decompressobj(16 + zlib.MAX_WBITS), rest
                if not self.tail and not self.in_eof:
                    self.tail = self._more()
                out = self.d.decompress(self.tail, n)
                self.tail = self.d.unconsumed_tail
                if out:
                    return out
                if not self.d.eof and not self.tail and self.in_eof:
                    raise IDXFormatError(f"{self.name}: the gzip stream is truncated (it ends before its "
                                         f"end marker)")
        except zlib.error as e:
            raise IDXFormatError(f"{self.name}: corrupt gzip data ({e})") from None
        return b""

    def readinto(self, mv):
        out = self.read(len(mv))
        mv[:len(out)] = out
        return len(out)


def _read_upto(stream, n):
    """Exactly ``n`` bytes from ``stream``, or fewer at its end."""
    parts, got = [], 0
    while got < n:
        piece = stream.read(n - got)
        if not piece:
            break
        parts.append(bytes(piece))
        got += len(piece)
    return b"".join(parts)


def _open_stream(inp):
    """(stream of the IDX bytes, compressed?) for the input: gunzipped when
    it starts with the gzip magic, else the input itself."""
    magic = _read_upto(inp, 2)
    inp.unread(magic)
    if magic == _GZIP_MAGIC:
        return _Gunzip(inp, inp.name), True
    return inp, False


def _read_header(stream, name, inp, compressed, max_bytes):
    """Read and check the header; returns (dtype, shape, header bytes, payload_len)."""
    head = _read_upto(stream, 4)
    if len(head) == 4:
        head += _read_upto(stream, 4 * head[3])
    dtype, shape, hl, pl = _parse_header(head, name, total=None if compressed else inp.size,
                                         max_bytes=max_bytes)
    if compressed and inp.size is not None and hl + pl > _MAX_RATIO * inp.size + 1024:
        raise IDXFormatError(f"{name}: truncated: the header declares shape {shape} ({hl + pl:,} bytes with "
                             f"the header), more than a gzip file of {inp.size:,} bytes can hold (deflate "
                             f"compresses at most {_MAX_RATIO}:1)")
    return dtype, shape, head[:hl], pl


def _fill(stream, buf, name, shape, dtype, hl, pl, digest=None):
    """Read the payload into the writable byte view ``buf`` (pl bytes), then
    check that the stream ends there."""
    pos = 0
    while pos < pl:
        got = stream.readinto(buf[pos:pos + min(_CHUNK, pl - pos)])
        if not got:
            raise IDXFormatError(f"{name}: truncated: the header declares shape {shape} of "
                                 f"{dtype.name.lstrip('>')} ({hl + pl:,} bytes with the header), the data "
                                 f"ends after {hl + pos:,} bytes")
        if digest is not None:
            digest.update(buf[pos:pos + got])
        pos += got
    if stream.read(1):
        raise IDXFormatError(f"{name}: trailing bytes: the data is longer than the {hl + pl:,} bytes its "
                             f"header declares (shape {shape})")


def _decode(source, name=None, max_bytes=DEFAULT_MAX_BYTES, sha256=False):
    """Read an IDX file (a path or bytes, gzip or not) with bounded memory.

    Returns ``(array, hexdigest)``: a native-endian writable array, and the
    SHA-256 of the uncompressed IDX bytes when ``sha256`` (else None)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, numbers.Integral) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer (bytes), got {max_bytes!r}")
    with _Input(source) as inp:
        name = inp.name if name is None else name
        stream, compressed = _open_stream(inp)
        dtype, shape, head, pl = _read_header(stream, name, inp, compressed, max_bytes)
        digest = hashlib.sha256(head) if sha256 else None
        try:
            arr = np.empty(shape, dtype.newbyteorder("="))
        except MemoryError:
            raise MemoryError(f"{name}: not enough memory for the declared shape {shape} "
                              f"({pl:,} bytes)") from None
        _fill(stream, memoryview(arr.reshape(-1).view(np.uint8)), name, shape, dtype, len(head), pl, digest)
    if dtype.itemsize > 1 and not dtype.isnative:
        arr.byteswap(inplace=True)
    return arr, None if digest is None else digest.hexdigest()


def decompress_idx(data, name="<bytes>", max_bytes=DEFAULT_MAX_BYTES):
    """The uncompressed IDX bytes of ``data``: gunzipped when it starts with
    the gzip magic (a ``bytearray``: the header is checked first, then the
    declared size is decompressed into one buffer, and more or less data
    than declared is an IDXFormatError), else ``data`` as ``bytes``."""
    if bytes(data[:2]) != _GZIP_MAGIC:
        return bytes(data)
    inp = _Input(data)
    stream = _Gunzip(inp, name)
    dtype, shape, head, pl = _read_header(stream, name, inp, True, max_bytes)
    out = bytearray(len(head) + pl)
    out[:len(head)] = head
    _fill(stream, memoryview(out)[len(head):], name, shape, dtype, len(head), pl)
    return out


def parse_idx(raw, name="<bytes>", max_bytes=DEFAULT_MAX_BYTES):
    """Parse uncompressed IDX bytes into a native-endian, writable array."""
    dtype, shape, header_len, _ = _parse_header(raw, name, total=len(raw), max_bytes=max_bytes)
    arr = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))          # native byte order, a writable copy


def read_idx(source, max_bytes=DEFAULT_MAX_BYTES):
    """Read an IDX file (a path, or the file's bytes), gzip-compressed or not.

    Returns a native-endian, writable NumPy array of the declared shape.
    Raises :class:`IDXFormatError` for any malformed input (a declared size
    above ``max_bytes`` is refused before anything is decompressed), and the
    usual ``OSError`` for a path that cannot be read (``FileNotFoundError``,
    ``IsADirectoryError``, ``PermissionError``).  Peak memory: the array plus
    a few MiB (see the module docstring).
    """
    return _decode(source, None, max_bytes)[0]


def write_idx(array, path, compress=None):
    """Write ``array`` as an IDX file at ``path``; gzip-compressed when
    ``compress`` is true (None: when the name ends in ".gz").

    Supported dtypes: uint8, int8, int16, int32, float32, float64, with 1 to
    255 dimensions.  Written in pieces (no full copy of a C-contiguous
    array) to a temporary file that is renamed into place; a symbolic link
    is written through (see :mod:`nnumpy._fileio`).
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
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path = os.fspath(path)
    if compress is None:
        compress = path.endswith(".gz")
    flat = arr.reshape(-1)                  # a view when C-contiguous
    step = max(1, _CHUNK // arr.dtype.itemsize)
    with atomic_write(path, prefix=".idx-") as f:
        out = gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) if compress else f
        try:
            out.write(header)
            for i in range(0, flat.size, step):
                out.write(memoryview(np.ascontiguousarray(flat[i:i + step], dtype=IDX_TYPES[code]).view(np.uint8)))
        finally:
            if compress:
                out.close()                 # writes the gzip trailer; leaves f open
    return path
