"""The IDX reader and writer."""
import gzip
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnumpy.datasets import IDXFormatError, read_idx, write_idx
from nnumpy.datasets.idx import IDX_TYPES

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2), (0, 4)]


def header(code, shape):
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_round_trip(dtype, shape, compress, tmp_path):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    a = (rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype) if info
         else rng.standard_normal(shape).astype(dtype))
    path = tmp_path / "a.idx"                       # no .gz suffix: compression by argument
    write_idx(a, path, compress=compress)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compress
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == shape
    np.testing.assert_array_equal(a, b)
    assert b.flags.writeable
    assert np.array_equal(read_idx(path.read_bytes()), a)


def test_big_endian_on_disk_and_gz_suffix(tmp_path):
    write_idx(np.array([1, 256], dtype=np.int32), tmp_path / "x.gz")
    raw = gzip.decompress((tmp_path / "x.gz").read_bytes())
    assert raw == header(0x0C, (2,)) + b"\x00\x00\x00\x01\x00\x00\x01\x00"
    write_idx(np.array([1, 2], dtype=">i2"), tmp_path / "y")      # big-endian input is fine
    assert np.array_equal(read_idx(tmp_path / "y"), [1, 2])


def test_writer_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="cannot store dtype int64"):
        write_idx(np.zeros(3, np.int64), tmp_path / "a")
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(np.array(5, np.uint8), tmp_path / "a")
    assert list(tmp_path.iterdir()) == []


GOOD = header(0x08, (2, 3)) + bytes(range(6))
MALFORMED = {
    "empty": b"",
    "three bytes": b"\x00\x00\x08",
    "bad first byte": b"\x01\x00\x08\x01\x00\x00\x00\x01\x00",
    "bad second byte": b"\x00\x07\x08\x01\x00\x00\x00\x01\x00",
    "html page": b"<!DOCTYPE html><html><body>Not Found</body></html>",
    "unknown type 0x0A": header(0x0A, (1,)) + b"\x00",
    "unknown type 0xFF": header(0xFF, (1,)) + b"\x00",
    "zero dimensions": b"\x00\x00\x08\x00",
    "truncated header": b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00",
    "truncated data": GOOD[:-1],
    "no data": header(0x08, (2, 3)),
    "trailing bytes": GOOD + b"\x00",
    "float64 data short": header(0x0E, (2,)) + b"\x00" * 15,
    "huge header": header(0x08, (2 ** 31, 2 ** 31, 2 ** 31)) + b"\x00" * 80,
    "zero-sized but huge": header(0x08, (0xFF000000, 0, 5455, 395217)),
    "huge header gzip": gzip.compress(header(0x08, (2 ** 31, 2 ** 31, 2 ** 31)) + b"\x00" * 80),
    "gzip truncated": gzip.compress(GOOD)[:-6],
    "gzip corrupt": gzip.compress(GOOD)[:10] + b"\xff" * 20,
    "gzip of trailing": gzip.compress(GOOD + b"xyz"),
    "gzip of truncated": gzip.compress(GOOD[:-2]),
    "gzip then garbage": gzip.compress(GOOD) + b"garbage",
    "gzip magic only": b"\x1f\x8b",
    "gzip of nothing": gzip.compress(b""),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_inputs_raise_idx_format_error(name, tmp_path):
    path = tmp_path / "bad-file.idx"
    path.write_bytes(MALFORMED[name])
    with pytest.raises(IDXFormatError, match="bad-file.idx") as info:
        read_idx(path)
    assert isinstance(info.value, ValueError)
    with pytest.raises(IDXFormatError, match="<bytes>"):
        read_idx(MALFORMED[name])


def test_huge_header_fails_fast_with_little_memory():
    tracemalloc.start()
    with pytest.raises(IDXFormatError, match="too large for any array|truncated"):
        read_idx(header(0x08, (2 ** 31, 2 ** 31, 2 ** 31)) + b"\x00" * 88)
    with pytest.raises(IDXFormatError):
        read_idx(gzip.compress(header(0x0E, (2 ** 31, 2 ** 31)) + b"\x00" * 88))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 2 ** 20


def test_gzip_bomb_is_bounded():
    # 256 MiB of zeros (about 256 KiB compressed) behind a header that declares 6 bytes
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = z.compress(GOOD) + b"".join(z.compress(zeros) for _ in range(256)) + z.flush()
    assert len(bomb) < 2 << 20
    tracemalloc.start()
    with pytest.raises(IDXFormatError, match="trailing bytes"):
        read_idx(bomb)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2 ** 20


def test_max_bytes_limit():
    with pytest.raises(IDXFormatError, match="more than the limit"):
        read_idx(gzip.compress(header(0x08, (100, 100)) + bytes(10000)), max_bytes=1000)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")


# derandomize: the same examples on every run (seeded), so CI is reproducible
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(st.binary(max_size=64))
def test_fuzz_random_bytes(data):
    for blob in (data, b"\x00\x00" + data, gzip.compress(data)):
        try:
            read_idx(blob)
        except IDXFormatError:
            pass


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(code=st.sampled_from(sorted(IDX_TYPES) + [0x00, 0x0A, 0x10]),
       dims=st.lists(st.integers(0, 2 ** 32 - 1), min_size=0, max_size=4),
       body=st.binary(max_size=64), flip=st.integers(0, 40), compress=st.booleans())
def test_fuzz_mutated_headers(code, dims, body, flip, compress):
    blob = bytearray(struct.pack(">BBBB", 0, 0, code, len(dims)) + struct.pack(f">{len(dims)}I", *dims) + body)
    if flip < len(blob):
        blob[flip] ^= 0xFF
    blob = gzip.compress(bytes(blob)) if compress else bytes(blob)
    try:
        arr = read_idx(blob)
    except IDXFormatError:
        return
    assert arr.dtype.isnative


def test_real_mnist_labels(mnist_dir):
    y = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz")
    assert y.shape == (60000,) and y.dtype == np.uint8
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
