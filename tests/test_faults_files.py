"""Faults in files, by class, for every format nnumpy reads or writes: model
files (``save``/``load``), IDX files (``read_idx``/``write_idx``) and the
dataset files behind the loaders, against {missing, unreadable, empty,
truncated, corrupt header, lying header (declares more or less), huge
declaration, wrong type, symbolic link, read-only folder, disk full}.

The rule under test: a clear error naming the file and the defect, or a
correct result; never a user's file replaced, damaged or deleted; never
memory beyond the payload.  Where a class can be checked exhaustively (every
truncation, every flipped byte of a small file) it is."""
import errno
import gzip
import hashlib
import io
import json
import os
import pickle
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import tracemalloc
import warnings
import zipfile
import zlib
from types import SimpleNamespace

import numpy as np
import pytest

import nnumpy as nnp
from httpmirror import Mirror
from nnumpy import _fileio, serialization
from nnumpy.datasets import (ChecksumError, DatasetNotFoundError, DatasetWarning, IDXFormatError, load_dataset,
                             loaders, read_idx, registry, write_idx)
from nnumpy.datasets.registry import ROLES, DatasetSpec, FileSpec
from nnumpy.serialization import ModelFileError

MiB = 1 << 20
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def listing(folder):
    """{name: (bytes or link target, mtime)} of everything in ``folder``, links not followed."""
    out = {}
    for name in sorted(os.listdir(folder)):
        p = os.path.join(folder, name)
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            out[name] = ("link", os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[name] = ("dir", listing(p))
        elif not stat.S_ISREG(st.st_mode):
            out[name] = ("special", st.st_mode, st.st_mtime_ns)       # never opened (a FIFO would block)
        else:
            with open(p, "rb") as f:
                out[name] = (f.read(), st.st_mtime_ns)
    return out


def peak_of(fn):
    """(result or exception, peak bytes traced) of calling ``fn``."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as e:           # noqa: BLE001 - the caller inspects it
            result = e
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


class DiskFull:
    """Replaces ``open`` in nnumpy._fileio: files opened for writing accept
    ``limit`` bytes, then every write raises OSError(ENOSPC)."""

    def __init__(self, limit):
        self.limit = limit

    def __call__(self, file, mode="r", *args, **kwargs):
        f = open(file, mode, *args, **kwargs)
        if "w" not in mode:
            return f
        limit = self.limit

        class Full:
            written = 0

            def write(self, data):
                n = memoryview(data).nbytes
                if Full.written + n > limit:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                Full.written += n
                return f.write(data)

            def __getattr__(self, name):
                return getattr(f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

        return Full()


def refuse_mkstemp(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), kwargs.get("dir"))


def run_unprivileged(fn, folder):
    """``fn()`` (returning a string) run in ``folder`` by a user without
    root's powers: in a forked child that drops to ``nobody`` when the tests
    run as root, else in this process."""
    if os.geteuid() != 0:
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            return fn()
        finally:
            os.chdir(cwd)
    import pwd
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root and there is no 'nobody' user to drop privileges to")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: never returns into pytest
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.chdir(folder)
            out = "ok\n" + fn()
        except BaseException as e:                 # noqa: BLE001 - reported to the parent
            out = f"child failed: {type(e).__name__}: {e}"
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        piece = os.read(r, 65536)
        if not piece:
            break
        chunks.append(piece)
    os.close(r)
    os.waitpid(pid, 0)
    out = b"".join(chunks).decode()
    assert out.startswith("ok\n"), out
    return out


@pytest.fixture
def world_dir():
    """A folder outside pytest's private tmp (which other users cannot enter)."""
    d = tempfile.mkdtemp(prefix="nnumpy-faults-")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for dirpath, dirnames, _ in os.walk(d):
            for name in dirnames:
                os.chmod(os.path.join(dirpath, name), 0o755)
        shutil.rmtree(d)


# =========================================================================================
# Model files: load
# =========================================================================================

@pytest.fixture
def saved(tmp_path):
    model = nnp.MLP([6, 5, 3], rng=0)
    path = tmp_path / "m.npz"
    nnp.save(model, path)
    return model, path


def same_model(a, b):
    return (repr(a) == repr(b) and list(a.state_dict()) == list(b.state_dict())
            and all(np.array_equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values())))


def npy_bytes(shape, dtype, data):
    """A .npy file whose header declares ``shape``/``dtype``, followed by ``data`` (unchecked)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                               "fortran_order": False, "shape": shape})
    return buf.getvalue() + data


def members_of(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)          # "Duplicate name"
        with zipfile.ZipFile(path, "w", compression) as z:
            for name, data in members:
                z.writestr(name, data)


def with_meta(saved_path, dst, change):
    """Rewrite a saved model with its metadata JSON changed by ``change(meta)``."""
    with np.load(saved_path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    meta = json.loads(str(arrays["__nnumpy__"]))
    meta = change(meta) or meta
    arrays["__nnumpy__"] = np.array(json.dumps(meta))
    np.savez(dst, **arrays)
    return dst


def test_load_missing_dangling_folder_fifo_empty(tmp_path):
    cases = {"absent.npz": "no such model file"}
    os.symlink(tmp_path / "nowhere.npz", tmp_path / "dangling.npz")
    cases["dangling.npz"] = "symbolic link to .*nowhere.npz, which does not exist"
    (tmp_path / "folder.npz").mkdir()
    cases["folder.npz"] = "is a folder"
    os.mkfifo(tmp_path / "fifo.npz")
    cases["fifo.npz"] = "not a regular file"           # refused without opening it (which would block)
    (tmp_path / "empty.npz").write_bytes(b"")
    cases["empty.npz"] = "empty"
    (tmp_path / "file").write_bytes(b"x")
    cases["file/model.npz"] = "no such model file"
    for name, why in cases.items():
        with pytest.raises(ModelFileError, match=why) as info:
            nnp.load(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)


def test_load_unreadable(saved, monkeypatch):
    _, path = saved

    def denied(file, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", file)
    monkeypatch.setattr(serialization, "open", denied, raising=False)
    with pytest.raises(ModelFileError, match=r"m\.npz: cannot be read \(Permission denied\)"):
        nnp.load(path)


def test_every_truncation_is_an_error(saved):
    model, path = saved
    data = path.read_bytes()
    cut = path.with_name("cut.npz")
    for n in range(len(data)):
        cut.write_bytes(data[:n])
        with pytest.raises(ModelFileError, match="cut.npz"):
            nnp.load(cut)


def test_every_flipped_byte_is_an_error_or_changes_nothing(saved):
    """A flip anywhere (zip headers, .npy headers, data, metadata, central
    directory) gives a ModelFileError naming the file, or (in a field that
    carries no information, such as a timestamp) exactly the saved model."""
    model, path = saved
    data = path.read_bytes()
    bad = path.with_name("flip.npz")
    outcomes = {"error": 0, "same": 0}
    for i in range(len(data)):
        b = bytearray(data)
        b[i] ^= 0xFF
        bad.write_bytes(bytes(b))
        try:
            got = nnp.load(bad)
        except ModelFileError as e:
            assert "flip.npz" in str(e)
            outcomes["error"] += 1
        else:
            assert same_model(got, model), f"flipping byte {i} loaded a different model"
            outcomes["same"] += 1
    assert outcomes["error"] > 0.8 * len(data)


@pytest.mark.parametrize("case", ["not npy magic", "npy header garbage", "header too big"])
def test_corrupt_npy_header(saved, tmp_path, case):
    _, path = saved
    members = members_of(path)
    if case == "not npy magic":
        members["0.weight.npy"] = b"NOTNUMPY" + members["0.weight.npy"][8:]
    elif case == "npy header garbage":
        w = members["0.weight.npy"]
        members["0.weight.npy"] = w[:10] + b"{'descr': <f4, shape: [5, 6]}".ljust(len(w) - 10 - 120) + w[-120:]
    else:
        members["0.weight.npy"] = np.lib.format.magic(1, 0) + struct.pack("<H", 60000) + b" " * 60000
    write_zip(tmp_path / "bad.npz", members.items())
    with pytest.raises(ModelFileError, match=r"bad\.npz: entry '0\.weight' has no valid \.npy header"):
        nnp.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("declared", [(5, 7), (5, 5), (5,), (10 ** 12, 6), (2 ** 62, 2 ** 62)],
                         ids=["more", "less", "fewer dims", "huge", "overflowing"])
def test_lying_npy_header(saved, tmp_path, declared):
    """An array header that declares more (or less) than the entry holds: refused
    from the header, before the model is built or anything allocated."""
    _, path = saved
    members = members_of(path)
    members["0.weight.npy"] = npy_bytes(declared, "<f4", np.zeros((5, 6), np.float32).tobytes())
    write_zip(tmp_path / "bad.npz", members.items())
    err, peak = peak_of(lambda: nnp.load(tmp_path / "bad.npz"))
    assert isinstance(err, ModelFileError), err
    assert "bad.npz: entry '0.weight': its header declares shape" in str(err)
    assert "the entry holds 120 bytes" in str(err)
    assert peak < 2 * MiB


def test_metadata_declaring_a_huge_network_is_refused_before_allocating(saved, tmp_path):
    """The tester's example: a small file whose metadata declares 784-300000-10."""
    model = nnp.MLP([784, 100, 10], rng=0)
    nnp.save(model, tmp_path / "small.npz")
    with_meta(tmp_path / "small.npz", tmp_path / "huge.npz",
              lambda m: m["architecture"]["config"].update(sizes=[784, 300000, 10]))
    assert os.path.getsize(tmp_path / "huge.npz") < 400_000
    err, peak = peak_of(lambda: nnp.load(tmp_path / "huge.npz"))
    assert isinstance(err, ModelFileError), err
    assert "huge.npz" in str(err)
    assert "0.weight: shape (100, 784) in the state dict, (300000, 784) in the model" in str(err)
    assert peak < 4 * MiB                      # the old loader allocated 2.7 GB here


def patch_central_directory(path, member, **fields):
    """Change fields of ``member``'s central-directory entry in place:
    file_size, compress_size, header_offset."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        n = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46:at + 46 + n]) == name:
            break
        at += 4
    offsets = {"compress_size": 20, "file_size": 24, "header_offset": 42}
    for k, v in fields.items():
        struct.pack_into("<I", data, at + offsets[k], v)
    path.write_bytes(bytes(data))


def test_lying_zip_directory(saved, tmp_path):
    _, path = saved
    # a stored member that declares more than it stores
    shutil.copy(path, tmp_path / "a.npz")
    patch_central_directory(tmp_path / "a.npz", "0.weight.npy", file_size=2 ** 31)
    with pytest.raises(ModelFileError, match=r"a\.npz: member '0\.weight\.npy' is stored"):
        nnp.load(tmp_path / "a.npz")
    # ... and one that claims to store more than the file has
    shutil.copy(path, tmp_path / "b.npz")
    patch_central_directory(tmp_path / "b.npz", "0.weight.npy", file_size=2 ** 31, compress_size=2 ** 31)
    with pytest.raises(ModelFileError, match=r"b\.npz: truncated: member '0\.weight\.npy' extends past the end"):
        nnp.load(tmp_path / "b.npz")
    # a deflated member declaring more than deflate can expand to (a zip bomb's directory)
    with np.load(path) as f:
        np.savez_compressed(tmp_path / "c.npz", **{k: f[k] for k in f.files})
    patch_central_directory(tmp_path / "c.npz", "0.weight.npy", file_size=2 ** 31)
    err, peak = peak_of(lambda: nnp.load(tmp_path / "c.npz"))
    assert isinstance(err, ModelFileError) and "more than its" in str(err) and "c.npz" in str(err), err
    assert peak < 2 * MiB
    # two directory entries pointing at the same bytes (an overlapping zip bomb)
    shutil.copy(path, tmp_path / "d.npz")
    with zipfile.ZipFile(path) as z:
        first = z.getinfo("0.weight.npy").header_offset
    patch_central_directory(tmp_path / "d.npz", "0.bias.npy", header_offset=first)
    with pytest.raises(ModelFileError, match=r"d\.npz: members .* overlap"):
        nnp.load(tmp_path / "d.npz")


def test_deflated_member_that_holds_less_than_declared(saved, tmp_path):
    """A compressed member whose stream ends early (or has a bad CRC) is found
    before the model is built."""
    _, path = saved
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        info = z.getinfo("0.weight.npy")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data = bytearray((tmp_path / "c.npz").read_bytes())
    data[start + info.compress_size // 2] ^= 0x55
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"c\.npz: entry '0\.weight'"):
        nnp.load(tmp_path / "c.npz")


def test_deflated_member_that_holds_less_is_found_before_building_the_model(tmp_path):
    """A compressed file whose data stream breaks off: found by decompressing
    (in pieces) before the model (12 MB of weights, twice that with its
    gradients) is built."""
    model = nnp.MLP([784, 4000, 10], rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arrays = {k: v for k, v in model.state_dict().items()}
    nnp.save(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays["__nnumpy__"] = f["__nnumpy__"]
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    del model, arrays
    with zipfile.ZipFile(tmp_path / "c.npz") as z:
        info = z.getinfo("0.weight.npy")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data = bytearray((tmp_path / "c.npz").read_bytes())
    data[start + 1000:start + 1400] = bytes(400)          # the stream breaks early in the member
    (tmp_path / "c.npz").write_bytes(bytes(data))
    err, peak = peak_of(lambda: nnp.load(tmp_path / "c.npz"))
    assert isinstance(err, ModelFileError) and "c.npz: entry '0.weight'" in str(err), err
    assert peak < 10 * MiB, peak / MiB


def test_unexpected_and_duplicate_members(saved, tmp_path):
    _, path = saved
    members = members_of(path)
    write_zip(tmp_path / "extra.npz", list(members.items()) + [("notes.txt", b"hello")])
    with pytest.raises(ModelFileError, match=r"extra\.npz: unexpected member 'notes\.txt'"):
        nnp.load(tmp_path / "extra.npz")
    write_zip(tmp_path / "dir.npz", list(members.items()) + [("sub/", b"")])
    with pytest.raises(ModelFileError, match=r"dir\.npz: unexpected member 'sub/'"):
        nnp.load(tmp_path / "dir.npz")
    write_zip(tmp_path / "dup.npz", list(members.items()) + [("0.bias.npy", members["0.bias.npy"])])
    with pytest.raises(ModelFileError, match=r"dup\.npz: the archive holds '0\.bias\.npy' twice"):
        nnp.load(tmp_path / "dup.npz")
    write_zip(tmp_path / "bz.npz", members.items(), zipfile.ZIP_BZIP2)
    with pytest.raises(ModelFileError, match="compression method 12"):
        nnp.load(tmp_path / "bz.npz")


@pytest.mark.parametrize("where", ["metadata", "weight"])
def test_pickled_object_arrays_are_refused_unread(saved, tmp_path, where, monkeypatch):
    _, path = saved
    members = members_of(path)
    evil = np.array([{"evil": 1}], dtype=object)
    buf = io.BytesIO()
    np.save(buf, evil, allow_pickle=True)
    members["__nnumpy__.npy" if where == "metadata" else "0.weight.npy"] = buf.getvalue()
    write_zip(tmp_path / "pickled.npz", members.items())
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    with pytest.raises(ModelFileError, match=r"pickled\.npz: entry '.*' holds Python objects \(a pickle\)"):
        nnp.load(tmp_path / "pickled.npz")


BAD_META = {
    "metadata not a string": None,
    "not JSON": "{not json",
    "JSON list": [1, 2],
    "format missing": lambda m: m.pop("format"),
    "version is a string": lambda m: m.update(version="1"),
    "version is true": lambda m: m.update(version=True),
    "version 9": lambda m: m.update(version=9),
    "dtype int8": lambda m: m.update(dtype="int8"),
    "dtype a number": lambda m: m.update(dtype=32),
    "architecture missing": lambda m: m.pop("architecture"),
    "architecture a string": lambda m: m.update(architecture="MLP"),
    "unknown module type": lambda m: m["architecture"].update(type="Conv2d"),
    "type not a string": lambda m: m["architecture"].update(type=["MLP"]),
    "config a list": lambda m: m["architecture"].update(config=[784, 10]),
    "unknown config key": lambda m: m["architecture"]["config"].update(sizez=[6, 5, 3]),
    "sizes missing": lambda m: m["architecture"]["config"].pop("sizes"),
    "sizes a string": lambda m: m["architecture"]["config"].update(sizes="6,5,3"),
    "size a string": lambda m: m["architecture"]["config"].update(sizes=[6, "5", 3]),
    "size a float": lambda m: m["architecture"]["config"].update(sizes=[6, 5.5, 3]),
    "size zero": lambda m: m["architecture"]["config"].update(sizes=[6, 0, 3]),
    "size negative": lambda m: m["architecture"]["config"].update(sizes=[6, -5, 3]),
    "size a bool": lambda m: m["architecture"]["config"].update(sizes=[6, True, 3]),
    "one size": lambda m: m["architecture"]["config"].update(sizes=[6]),
    "unknown activation": lambda m: m["architecture"]["config"].update(activation=["mish"]),
    "activation a number": lambda m: m["architecture"]["config"].update(activation=3),
    "too many activations": lambda m: m["architecture"]["config"].update(activation=["relu", "relu"]),
    "dropout a string": lambda m: m["architecture"]["config"].update(dropout="0.1"),
    "dropout above 1": lambda m: m["architecture"]["config"].update(dropout=1.5),
    "dropout NaN": lambda m: m["architecture"]["config"].update(dropout=float("nan")),
    "bias a string": lambda m: m["architecture"]["config"].update(bias="yes"),
    "children on an MLP": lambda m: m["architecture"].update(children=[]),
    "unknown key in a module": lambda m: m["architecture"].update(weights=[1]),
    "deep nesting": lambda m: m.update(architecture=json.loads('{"type": "Sequential", "children": ['
                                                               * 200 + '{"type": "ReLU"}' + "]}" * 200)),
    "children not a list": lambda m: m.update(architecture={"type": "Sequential", "children": {"0": 1}}),
    "child not an object": lambda m: m.update(architecture={"type": "Sequential", "children": [3]}),
    "Linear without out_features": lambda m: m.update(architecture={"type": "Linear",
                                                                    "config": {"in_features": 6}}),
    "Linear in_features null": lambda m: m.update(architecture={"type": "Linear", "config": {
        "in_features": None, "out_features": 5}}),
    "LeakyReLU slope a string": lambda m: m.update(architecture={"type": "Sequential", "children": [
        {"type": "LeakyReLU", "config": {"negative_slope": "0.1"}}]}),
    "ReLU with a config key": lambda m: m.update(architecture={"type": "ReLU", "config": {"inplace": True}}),
}


@pytest.mark.parametrize("case", list(BAD_META))
def test_malformed_metadata_is_a_model_file_error(saved, tmp_path, case):
    _, path = saved
    change = BAD_META[case]
    dst = tmp_path / "meta.npz"
    if change is None:
        members = members_of(path)
        buf = io.BytesIO()
        np.save(buf, np.arange(3))
        members["__nnumpy__.npy"] = buf.getvalue()
        write_zip(dst, members.items())
    elif not callable(change):
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["__nnumpy__"] = np.array(change if isinstance(change, str) else json.dumps(change))
        np.savez(dst, **arrays)
    else:
        with_meta(path, dst, change)
    with pytest.raises(ModelFileError, match=r"meta\.npz: invalid model description") as info:
        nnp.load(dst)
    assert "Traceback" not in str(info.value)


def test_build_checks_a_description_too():
    with pytest.raises(ValueError, match=r"architecture\.config\.sizes\[1\] must be a positive integer"):
        serialization.build({"type": "MLP", "config": {"sizes": [3, "4", 2]}})


@pytest.mark.parametrize("arrays_dtype", [np.float64, np.int32, np.float16])
def test_dtype_mismatch(saved, tmp_path, arrays_dtype):
    _, path = saved
    with np.load(path) as f:
        arrays = {k: (f[k].astype(arrays_dtype) if k != "__nnumpy__" else f[k]) for k in f.files}
    np.savez(tmp_path / "dt.npz", **arrays)
    why = rf"dt\.npz: the model is float32 but 0\.weight is {np.dtype(arrays_dtype)}"
    with pytest.raises(ModelFileError, match=why):
        nnp.load(tmp_path / "dt.npz")


def test_architecture_that_does_not_match_the_arrays(saved, tmp_path):
    _, path = saved
    with_meta(path, tmp_path / "a.npz", lambda m: m["architecture"]["config"].update(bias=False))
    with pytest.raises(ModelFileError, match=r"a\.npz: .*unexpected key\(s\): 0\.bias, 2\.bias"):
        nnp.load(tmp_path / "a.npz")
    with_meta(path, tmp_path / "b.npz", lambda m: m["architecture"]["config"].update(sizes=[6, 5, 4, 3],
                                                                                      activation=["relu"] * 2))
    with pytest.raises(ModelFileError, match=r"b\.npz: .*missing key\(s\): 4\.weight, 4\.bias"):
        nnp.load(tmp_path / "b.npz")


def test_other_byte_orders_and_layouts_load_correctly(saved, tmp_path):
    model, path = saved
    sd = model.state_dict()
    with np.load(path) as f:
        meta = f["__nnumpy__"]
    np.savez(tmp_path / "x.npz", **{"0.weight": sd["0.weight"].astype(">f4"), "0.bias": sd["0.bias"],
                                    "2.weight": np.asfortranarray(sd["2.weight"]), "2.bias": sd["2.bias"],
                                    "__nnumpy__": meta})
    assert same_model(nnp.load(tmp_path / "x.npz"), model)


def test_nan_weights_are_loaded_as_they_are(tmp_path):
    model = nnp.MLP([4, 3, 2], rng=0)
    model[0].weight.data[0, 0] = np.nan
    model[2].bias.data[1] = np.inf
    nnp.save(model, tmp_path / "nan.npz")
    back = nnp.load(tmp_path / "nan.npz")
    assert np.isnan(back[0].weight.data[0, 0]) and np.isinf(back[2].bias.data[1])
    for a, b in zip(back.state_dict().values(), model.state_dict().values()):
        assert a.tobytes() == b.tobytes()               # bit for bit (NaN != NaN)


# =========================================================================================
# Model files: save
# =========================================================================================

def test_save_through_a_symlink_updates_the_target_and_keeps_the_link(tmp_path):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    target = tmp_path / "runs" / "a" / "model.npz"
    nnp.save(nnp.MLP([4, 3, 2], rng=0), target)
    os.symlink("runs/a/model.npz", tmp_path / "latest.npz")
    newer = nnp.MLP([4, 3, 2], rng=1)
    nnp.save(newer, tmp_path / "latest.npz")
    assert os.readlink(tmp_path / "latest.npz") == "runs/a/model.npz"
    assert same_model(nnp.load(target), newer) and same_model(nnp.load(tmp_path / "latest.npz"), newer)
    assert sorted(os.listdir(tmp_path)) == ["latest.npz", "runs"]
    assert os.listdir(target.parent) == ["model.npz"]                 # no temporary left anywhere
    # a chain of links: the last target is written
    os.symlink("latest.npz", tmp_path / "chain.npz")
    third = nnp.MLP([4, 3, 2], rng=2)
    nnp.save(third, tmp_path / "chain.npz")
    assert os.path.islink(tmp_path / "chain.npz") and os.path.islink(tmp_path / "latest.npz")
    assert same_model(nnp.load(target), third)


def test_save_through_dangling_and_looping_links(tmp_path):
    os.symlink("made.npz", tmp_path / "dangling.npz")
    nnp.save(nnp.MLP([4, 3, 2], rng=0), tmp_path / "dangling.npz")     # creates the target, as open() would
    assert os.path.islink(tmp_path / "dangling.npz") and (tmp_path / "made.npz").is_file()
    os.symlink("nowhere/x.npz", tmp_path / "lost.npz")
    with pytest.raises(FileNotFoundError, match=r"folder .*nowhere does not exist.*lost\.npz"):
        nnp.save(nnp.MLP([4, 3, 2], rng=0), tmp_path / "lost.npz")
    os.symlink("loop2.npz", tmp_path / "loop1.npz")
    os.symlink("loop1.npz", tmp_path / "loop2.npz")
    with pytest.raises(OSError, match="loop of symbolic links") as info:
        nnp.save(nnp.MLP([4, 3, 2], rng=0), tmp_path / "loop1.npz")
    assert info.value.errno == errno.ELOOP
    assert sorted(os.listdir(tmp_path)) == ["dangling.npz", "loop1.npz", "loop2.npz", "lost.npz", "made.npz"]


def test_save_to_a_bad_destination_names_it(tmp_path):
    model = nnp.MLP([4, 3, 2], rng=0)
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_bytes(b"x")
    os.mkfifo(tmp_path / "fifo")
    cases = {"missing/m.npz": (FileNotFoundError, "does not exist"),
             "folder": (IsADirectoryError, "is a folder"),
             "folder/": (IsADirectoryError, "is a folder"),
             "afile/m.npz": (NotADirectoryError, "is a file, not a folder"),
             "fifo": (OSError, "special file")}
    before = listing(tmp_path)
    for name, (kind, why) in cases.items():
        dest = os.path.join(str(tmp_path), name)
        with pytest.raises(kind, match=why) as info:
            nnp.save(model, dest)
        assert isinstance(info.value, OSError) and info.value.filename == dest and dest in str(info.value)
    assert listing(tmp_path) == before


def test_save_into_a_read_only_folder_simulated(saved, monkeypatch):
    _, path = saved
    before = listing(path.parent)
    monkeypatch.setattr(_fileio.tempfile, "mkstemp", refuse_mkstemp)
    with pytest.raises(PermissionError, match="cannot write in the folder") as info:
        nnp.save(nnp.MLP([6, 5, 3], rng=9), path)
    assert info.value.filename == str(path)
    assert listing(path.parent) == before


def test_save_over_a_read_only_file_refuses(saved):
    model, path = saved
    os.chmod(path, 0o444)
    before = listing(path.parent)
    with pytest.raises(PermissionError, match="existing file is read-only"):
        nnp.save(nnp.MLP([6, 5, 3], rng=9), path)
    assert listing(path.parent) == before


@pytest.mark.parametrize("limit", [0, 300, 1000])
def test_disk_full_during_save_leaves_the_old_file_and_no_temporary(saved, monkeypatch, limit):
    model, path = saved
    before = listing(path.parent)
    monkeypatch.setattr(_fileio, "open", DiskFull(limit), raising=False)
    with pytest.raises(OSError) as info:
        nnp.save(nnp.MLP([6, 5, 3], rng=9), path)
    assert info.value.errno == errno.ENOSPC and str(path) in str(info.value)
    monkeypatch.undo()
    assert listing(path.parent) == before
    assert same_model(nnp.load(path), model)


def test_failing_sync_leaves_the_old_file(saved, monkeypatch):
    model, path = saved
    before = listing(path.parent)

    def eio(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(os, "fsync", eio)
    with pytest.raises(OSError, match="cannot save the model"):
        nnp.save(nnp.MLP([6, 5, 3], rng=9), path)
    monkeypatch.undo()
    assert listing(path.parent) == before


def test_save_refuses_what_it_cannot_describe(tmp_path):
    with pytest.raises(TypeError, match=r"save\(\) takes an nnumpy Module \(a model\), got dict"):
        nnp.save({"0.weight": np.zeros(3)}, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_real_permissions(world_dir):
    """Unreadable files and read-only folders, for real (as an unprivileged user)."""
    model = nnp.MLP([4, 3, 2], rng=0)
    nnp.save(model, os.path.join(world_dir, "secret.npz"))
    write_idx(np.arange(6, dtype=np.uint8), os.path.join(world_dir, "secret.idx"))
    os.chmod(os.path.join(world_dir, "secret.npz"), 0o000)
    os.chmod(os.path.join(world_dir, "secret.idx"), 0o000)
    ro = os.path.join(world_dir, "ro")
    os.mkdir(ro)
    nnp.save(model, os.path.join(ro, "m.npz"))
    os.chmod(os.path.join(ro, "m.npz"), 0o644)
    os.chmod(ro, 0o555)
    before = listing(ro)
    def attempts():
        lines = []
        for what, call, kind in (
                ("load", lambda: nnp.load("secret.npz"), ModelFileError),
                ("read_idx", lambda: read_idx("secret.idx"), PermissionError),
                ("save", lambda: nnp.save(nnp.MLP([4, 3, 2], rng=1), "ro/m.npz"), PermissionError),
                ("write_idx", lambda: write_idx(np.zeros(3, np.uint8), "ro/x.idx"), PermissionError)):
            try:
                call()
                lines.append(f"{what}: no error")
            except kind as e:
                lines.append(f"{what}: {e}")
        return "\n".join(lines)
    out = run_unprivileged(attempts, world_dir)
    assert "load: secret.npz: cannot be read (Permission denied)" in out
    assert "read_idx: [Errno 13] Permission denied: 'secret.idx'" in out
    assert "save: [Errno 13] cannot write in the folder" in out and "'ro/m.npz'" in out
    assert "write_idx: [Errno 13] cannot write in the folder" in out and "'ro/x.idx'" in out
    assert listing(ro) == before


# =========================================================================================
# Model files: memory
# =========================================================================================

def test_loading_a_model_needs_about_its_payload_in_memory(tmp_path):
    """Resident memory, measured in a fresh process: loading a model costs its
    weights and little more.  The weights are read straight into parameters
    that were not drawn at random first (``init=False``), and gradients are
    zero pages the system hands out only when written.  (tracemalloc would
    count those untouched pages too: the process's peak RSS is the truth.)"""
    code = ("import resource, sys, nnumpy as nnp\n"
            "nnp.save(nnp.MLP([784, 16000, 10], rng=0), sys.argv[1])\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.npz")], check=True, timeout=300)
    measure = ("import os, resource, sys, nnumpy as nnp\n"
               "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
               "m = nnp.load(sys.argv[1])\n"
               "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n")
    grew = int(subprocess.run([sys.executable, "-c", measure, str(tmp_path / "big.npz")], check=True,
                              capture_output=True, text=True, timeout=300).stdout)
    payload = (tmp_path / "big.npz").stat().st_size
    assert grew <= 1.2 * payload + 8 * MiB, (grew / MiB, payload / MiB)


# =========================================================================================
# IDX files
# =========================================================================================

def idx_header(code, shape):
    return struct.pack(">BBBB", 0, 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


def test_idx_missing_folder_dangling_unreadable(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="absent.idx"):
        read_idx(tmp_path / "absent.idx")
    (tmp_path / "d.idx").mkdir()
    with pytest.raises(IsADirectoryError, match="d.idx"):
        read_idx(tmp_path / "d.idx")
    os.symlink("nowhere", tmp_path / "dangling.idx")
    with pytest.raises(FileNotFoundError, match="dangling.idx"):
        read_idx(tmp_path / "dangling.idx")
    write_idx(np.arange(4, dtype=np.uint8), tmp_path / "ok.idx")
    from nnumpy.datasets import idx as idx_module

    def denied(file, *a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", file)
    monkeypatch.setattr(idx_module, "open", denied, raising=False)
    with pytest.raises(PermissionError, match="ok.idx"):
        read_idx(tmp_path / "ok.idx")


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_every_truncation_and_every_flipped_byte(tmp_path, compress):
    a = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    path = tmp_path / "a.idx"
    write_idx(a, path, compress=compress)
    data = path.read_bytes()
    bad = tmp_path / "bad.idx"
    for n in range(len(data)):
        bad.write_bytes(data[:n])
        with pytest.raises(IDXFormatError, match="bad.idx"):
            read_idx(bad)
    for i in range(len(data)):
        b = bytearray(data)
        b[i] ^= 0xFF
        bad.write_bytes(bytes(b))
        try:
            got = read_idx(bad)
        except IDXFormatError as e:
            assert "bad.idx" in str(e)
        else:                         # raw: a flipped value is just data; gzip: an unchecked header field
            assert got.shape == a.shape
            assert compress is False or np.array_equal(got, a)


LYING = {
    "raw declares more": idx_header(0x08, (2, 4)) + bytes(6),
    "raw declares less": idx_header(0x08, (2, 2)) + bytes(6),
    "gzip declares more": gzip.compress(idx_header(0x08, (2, 4)) + bytes(6)),
    "gzip declares less": gzip.compress(idx_header(0x08, (2, 2)) + bytes(6)),
    "gzip declares more, two members": gzip.compress(idx_header(0x08, (2, 4))) + gzip.compress(bytes(6)),
    "gzip declares less, two members": gzip.compress(idx_header(0x08, (2, 2))) + gzip.compress(bytes(6)),
    "gzip declares 1 GiB, holds 6 bytes": gzip.compress(idx_header(0x08, (2 ** 30,)) + bytes(6)),
    "gzip of raw float64, truncated": gzip.compress(idx_header(0x0E, (3,)) + bytes(23)),
}


@pytest.mark.parametrize("case", list(LYING))
def test_idx_lying_headers(tmp_path, case):
    path = tmp_path / "lie.idx"
    path.write_bytes(LYING[case])
    err, peak = peak_of(lambda: read_idx(path))
    assert isinstance(err, IDXFormatError), err
    assert "lie.idx" in str(err) and ("truncated" in str(err) or "trailing bytes" in str(err)), err
    assert peak < 2 * MiB


def test_idx_huge_declaration_is_refused_before_decompressing(tmp_path):
    # 256 MiB of zeros behind a header that declares them truthfully, max_bytes 1 MiB: refused from
    # the header, after decompressing only the header
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    blob = z.compress(idx_header(0x08, (256, MiB))) + b"".join(z.compress(bytes(MiB)) for _ in range(256)) + z.flush()
    path = tmp_path / "big.idx.gz"
    path.write_bytes(blob)
    err, peak = peak_of(lambda: read_idx(path, max_bytes=MiB))
    assert isinstance(err, IDXFormatError) and "more than the limit of 1,048,576 bytes" in str(err)
    assert peak < 2 * MiB
    # a small gzip declaring more than deflate could ever expand it to
    path.write_bytes(gzip.compress(idx_header(0x08, (2 ** 30,)) + bytes(1000)))
    err, peak = peak_of(lambda: read_idx(path))
    assert isinstance(err, IDXFormatError) and "more than a gzip file of" in str(err)
    assert peak < 2 * MiB


def test_idx_wrong_types(tmp_path):
    (tmp_path / "t.idx").write_bytes(idx_header(0x0A, (2,)) + bytes(2))
    with pytest.raises(IDXFormatError, match=r"t\.idx: unknown IDX type code 0x0a"):
        read_idx(tmp_path / "t.idx")
    (tmp_path / "h.idx").write_bytes(b"<html>not found</html>")
    with pytest.raises(IDXFormatError, match=r"h\.idx: bad leading bytes"):
        read_idx(tmp_path / "h.idx")
    with pytest.raises(ValueError, match="cannot store dtype"):
        write_idx(np.zeros(3, dtype=np.complex64), tmp_path / "c.idx")
    assert sorted(os.listdir(tmp_path)) == ["h.idx", "t.idx"]


def test_idx_symlinks(tmp_path):
    (tmp_path / "data").mkdir()
    write_idx(np.arange(5, dtype=np.int32), tmp_path / "data" / "x.idx")
    os.symlink("data/x.idx", tmp_path / "link.idx")
    assert read_idx(tmp_path / "link.idx").tolist() == [0, 1, 2, 3, 4]
    write_idx(np.arange(3, dtype=np.float32), tmp_path / "link.idx")
    assert os.path.islink(tmp_path / "link.idx")
    assert read_idx(tmp_path / "data" / "x.idx").tolist() == [0.0, 1.0, 2.0]
    assert os.listdir(tmp_path / "data") == ["x.idx"]


def test_idx_read_only_folder_and_disk_full(tmp_path, monkeypatch):
    path = tmp_path / "x.idx.gz"
    write_idx(np.arange(1000, dtype=np.int32), path)
    before = listing(tmp_path)
    monkeypatch.setattr(_fileio.tempfile, "mkstemp", refuse_mkstemp)
    with pytest.raises(PermissionError, match=r"cannot write in the folder .*x\.idx\.gz"):
        write_idx(np.zeros(3, np.uint8), path)
    monkeypatch.undo()
    for limit in (0, 20, 2000):
        monkeypatch.setattr(_fileio, "open", DiskFull(limit), raising=False)
        with pytest.raises(OSError) as info:
            write_idx(np.arange(1000, dtype=np.float64), path, compress=False)
        assert info.value.errno == errno.ENOSPC
        monkeypatch.undo()
        assert listing(tmp_path) == before
    assert read_idx(path).tolist() == list(range(1000))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_idx_real_size_file_peak_is_the_payload(tmp_path, compress):
    """50 MB: the peak while reading is the array plus a few MiB (the old
    reader held the whole file, the decompressed bytes and the array: 2x+)."""
    payload = 50 * 10 ** 6
    a = (np.arange(payload, dtype=np.uint32) % 251).astype(np.uint8).reshape(-1, 1000)
    path = tmp_path / "big.idx"
    write_idx(a, path, compress=compress)
    del a
    got, peak = peak_of(lambda: read_idx(path))
    assert got.shape == (50000, 1000) and got[0, 300] == 300 % 251
    assert peak <= 1.2 * payload + 8 * MiB, peak / MiB
    assert peak < 1.3 * payload


def test_idx_small_gzip_declaring_a_gib_costs_what_it_holds(tmp_path):
    """1.1 MB of incompressible data behind a header declaring 1 GiB: within
    deflate's ratio, so the array is allocated, but the system commits only
    the pages written: the process's peak RSS grows by what the file holds."""
    rnd = np.random.default_rng(0).integers(0, 256, 1_100_000, dtype=np.uint8).tobytes()
    path = tmp_path / "lie.idx.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, (2 ** 30,)) + rnd, 1))
    code = f"""
        import resource
        from nnumpy.datasets import read_idx, IDXFormatError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            read_idx({str(path)!r})
        except IDXFormatError as e:
            assert "truncated" in str(e), e
        else:
            raise SystemExit("no error")
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) < 32 * MiB, int(r.stdout) / MiB


# =========================================================================================
# Dataset files behind the loaders: never replace what the user placed
# =========================================================================================

NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")


def tiny_dataset(name, seed):
    """A registered dataset of four small IDX files: (spec, {filename: gz bytes}, {role: array})."""
    rng = np.random.default_rng(seed)
    shapes = {"train_images": (20, 4, 4), "train_labels": (20,), "test_images": (10, 4, 4), "test_labels": (10,)}
    files, blobs, arrays = {}, {}, {}
    for role, fname in zip(ROLES, NAMES):
        a = rng.integers(0, 256, shapes[role], dtype=np.uint8)
        payload = idx_header(0x08, a.shape) + a.tobytes()
        gz = gzip.compress(payload, mtime=0)
        files[role] = FileSpec(fname, hashlib.md5(gz).hexdigest(), hashlib.sha256(payload).hexdigest(), a.shape)
        blobs[fname], arrays[role] = gz, a
    spec = DatasetSpec(name=name, title=f"Tiny {name}", files=files, mirrors=("http://127.0.0.1:9/",),
                       classes=tuple("0123456789"), homepage="http://127.0.0.1:9/")
    return spec, blobs, arrays


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """Two registered tiny datasets, a mirror for each, and every folder the
    loaders use inside tmp_path: the checkout, the cache, the system folder."""
    ds = {}
    for name, seed in (("tiny-a", 1), ("tiny-b", 2)):
        spec, blobs, arrays = tiny_dataset(name, seed)
        monkeypatch.setitem(registry.DATASETS, name, spec)
        ds[name] = SimpleNamespace(spec=spec, blobs=blobs, arrays=arrays)
    for var in ("NNUMPY_DATA", "NNUMPY_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(loaders, "_checkout_root", lambda: tmp_path / "checkout")
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", (str(tmp_path / "system"),))
    with Mirror(ds["tiny-a"].blobs) as ma, Mirror(ds["tiny-b"].blobs) as mb:
        ds["tiny-a"].mirror, ds["tiny-b"].mirror = ma, mb
        yield SimpleNamespace(a=ds["tiny-a"], b=ds["tiny-b"], tmp=tmp_path,
                              own=lambda name: tmp_path / "checkout" / "datasets" / name,
                              cache=lambda name: tmp_path / "cache" / "nnumpy" / name)


def put(folder, blobs, names=NAMES):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(blobs[n])


def load(name, tiny, **kw):
    mirror = getattr(tiny, name[-1]).mirror
    kw.setdefault("mirrors", [mirror.url("m")])
    return load_dataset(name, progress=False, retries=0, timeout=(2.0, 2.0), **kw)


def assert_data(got, ds):
    (x, y), (xt, yt) = got
    for arr, role in zip((x, y, xt, yt), ROLES):
        np.testing.assert_array_equal(arr, ds.arrays[role])


def test_root_holding_another_datasets_files_is_never_replaced(tiny):
    """The tester's example: root holds valid tiny-a (think MNIST) files and
    the user asks for tiny-b (think Fashion-MNIST) with downloads on."""
    root = tiny.tmp / "root"
    put(root, tiny.a.blobs)
    before = listing(root)
    with pytest.warns(DatasetWarning) as caught:
        got = load("tiny-b", tiny, root=root)
    assert_data(got, tiny.b)
    assert listing(root) == before                                  # not one byte, not one mtime
    assert sorted(os.listdir(tiny.own("tiny-b"))) == sorted(NAMES)  # downloaded beside, into the download folder
    text = "\n".join(str(w.message) for w in caught)
    assert "genuine" in text and "'tiny-a'" in text and "did you mean 'tiny-a'?" in text
    assert "left as it is; using the verified copy" in text
    n = len(tiny.b.mirror.requests)
    with pytest.warns(DatasetWarning):
        assert_data(load("tiny-b", tiny, root=root), tiny.b)      # the next call: no download
    assert len(tiny.b.mirror.requests) == n == 4
    assert listing(root) == before


def test_root_with_another_datasets_files_offline_says_which(tiny):
    root = tiny.tmp / "root"
    put(root, tiny.a.blobs)
    before = listing(root)
    with pytest.warns(DatasetWarning), pytest.raises(DatasetNotFoundError) as info:
        load("tiny-b", tiny, root=root, download=False)
    text = str(info.value)
    assert text.count("did you mean 'tiny-a'?") == 4 and str(root) in text
    assert listing(root) == before and not tiny.own("tiny-b").exists()


def test_swapped_files_are_named(tiny):
    root = tiny.tmp / "root"
    root.mkdir()
    (root / NAMES[0]).write_bytes(tiny.a.blobs[NAMES[2]])       # test images under the train name
    (root / NAMES[2]).write_bytes(tiny.a.blobs[NAMES[0]])
    with pytest.warns(DatasetWarning, match="misnamed or swapped"), pytest.raises(DatasetNotFoundError):
        load("tiny-a", tiny, root=root, download=False)


def _make_fault(root, fname, blob, fault):
    p = root / fname
    if fault == "flipped byte":
        b = bytearray(blob)
        b[len(b) // 2] ^= 0xFF
        p.write_bytes(bytes(b))
    elif fault == "truncated":
        p.write_bytes(blob[:len(blob) // 2])
    elif fault == "empty":
        p.write_bytes(b"")
    elif fault == "html page":
        p.write_bytes(b"<!DOCTYPE html><html>Please log in</html>")
    elif fault == "lying header":
        p.write_bytes(gzip.compress(idx_header(0x08, (20, 4, 4)) + bytes(100)))
    elif fault == "huge header":
        p.write_bytes(gzip.compress(idx_header(0x08, (2 ** 31, 2 ** 31)) + bytes(100)))
    elif fault == "folder":
        p.mkdir()
    elif fault == "dangling link":
        os.symlink(root.parent / "gone.gz", p)
    elif fault == "link to a corrupt file":
        (root.parent / "elsewhere.gz").write_bytes(blob[:-8])
        os.symlink(root.parent / "elsewhere.gz", p)
    elif fault == "unreadable":
        p.write_bytes(blob)


ROOT_FAULTS = ["flipped byte", "truncated", "empty", "html page", "lying header", "huge header", "folder",
               "dangling link", "link to a corrupt file", "unreadable"]


@pytest.mark.parametrize("fault", ROOT_FAULTS)
def test_a_faulty_file_in_root_is_kept_and_a_copy_is_used_from_the_download_folder(tiny, fault, monkeypatch):
    root = tiny.tmp / "root"
    put(root, tiny.a.blobs)
    (root / NAMES[1]).unlink()
    _make_fault(root, NAMES[1], tiny.a.blobs[NAMES[1]], fault)
    if fault == "unreadable":
        real_open = open

        def denied(file, *a, **k):
            if os.fspath(file) == str(root / NAMES[1]):
                raise PermissionError(errno.EACCES, "Permission denied", file)
            return real_open(file, *a, **k)
        monkeypatch.setattr(registry, "open", denied, raising=False)
    before, outside = listing(root), listing(tiny.tmp)
    with pytest.warns(DatasetWarning, match=NAMES[1]):
        assert_data(load("tiny-a", tiny, root=root), tiny.a)
    assert listing(root) == before
    assert [n for _, n, _ in tiny.a.mirror.requests] == [NAMES[1]]
    assert os.listdir(tiny.own("tiny-a")) == [NAMES[1]]
    outside.pop("checkout", None)
    after = listing(tiny.tmp)
    after.pop("checkout")
    assert after == outside                                  # nothing else touched (e.g. a link's target)


@pytest.mark.parametrize("fault", ["flipped byte", "huge header", "dangling link"])
def test_a_faulty_file_in_root_offline_is_reported_and_kept(tiny, fault):
    root = tiny.tmp / "root"
    put(root, tiny.a.blobs)
    (root / NAMES[1]).unlink()
    _make_fault(root, NAMES[1], tiny.a.blobs[NAMES[1]], fault)
    before = listing(tiny.tmp)
    with pytest.warns(DatasetWarning), pytest.raises(DatasetNotFoundError) as info:
        load("tiny-a", tiny, root=root, download=False)
    assert NAMES[1] in str(info.value) and "download=False" in str(info.value)
    assert listing(tiny.tmp) == before


def test_a_missing_file_in_root_is_downloaded_into_root(tiny):
    root = tiny.tmp / "root"
    put(root, tiny.a.blobs, NAMES[:3])
    before = listing(root)
    assert_data(load("tiny-a", tiny, root=root), tiny.a)
    after = listing(root)
    assert {k: v for k, v in after.items() if k != NAMES[3]} == before
    assert after[NAMES[3]][0] == tiny.a.blobs[NAMES[3]]
    assert not (tiny.tmp / "checkout").exists()


def test_nnumpy_data_is_the_users_folder_too(tiny, monkeypatch):
    home = tiny.tmp / "home"
    monkeypatch.setenv("NNUMPY_DATA", str(home))
    put(home / "tiny-a", tiny.a.blobs)
    (home / "tiny-a" / NAMES[0]).write_bytes(tiny.a.blobs[NAMES[0]][:-4])      # the user's copy is bad
    before = listing(home)
    with pytest.warns(DatasetWarning) as caught:
        assert_data(load("tiny-a", tiny), tiny.a)
    assert "left as it is" in "\n".join(str(w.message) for w in caught)
    assert listing(home) == before
    assert os.listdir(tiny.own("tiny-a")) == [NAMES[0]]             # beside: nnumpy's own folder
    with pytest.warns(DatasetWarning):
        assert_data(load("tiny-a", tiny, download=False), tiny.a)  # found there next time, offline too
    assert len(tiny.a.mirror.requests) == 1
    # a file missing from $NNUMPY_DATA is still downloaded into it (adding, not replacing)
    (home / "tiny-a" / NAMES[3]).unlink()
    with pytest.warns(DatasetWarning):
        assert_data(load("tiny-a", tiny), tiny.a)
    assert (home / "tiny-a" / NAMES[3]).read_bytes() == tiny.a.blobs[NAMES[3]]


def test_nnumpys_own_folder_is_repaired_in_place(tiny):
    own = tiny.own("tiny-a")
    put(own, tiny.a.blobs)
    (own / NAMES[2]).write_bytes(tiny.a.blobs[NAMES[2]][:-4])
    with pytest.warns(DatasetWarning, match=NAMES[2]):
        assert_data(load("tiny-a", tiny), tiny.a)
    assert (own / NAMES[2]).read_bytes() == tiny.a.blobs[NAMES[2]]
    assert sorted(os.listdir(own)) == sorted(NAMES) and not (tiny.tmp / "cache").exists()


def test_real_data_in_nnumpys_own_folder_is_not_replaced(tiny):
    """A genuine file of another dataset (or a link to a user's file) in
    nnumpy's own folder is not garbage: the copy goes to the cache instead."""
    own = tiny.own("tiny-a")
    put(own, tiny.a.blobs, NAMES[1:3])
    (own / NAMES[0]).write_bytes(tiny.b.blobs[NAMES[0]])
    (tiny.tmp / "mine.gz").write_bytes(b"my own notes")
    os.symlink(tiny.tmp / "mine.gz", own / NAMES[3])
    before = listing(tiny.tmp)
    with pytest.warns(DatasetWarning) as caught:
        assert_data(load("tiny-a", tiny), tiny.a)
    assert "genuine train images file of the dataset 'tiny-b'" in "\n".join(str(w.message) for w in caught)
    after = listing(tiny.tmp)
    assert after.pop("cache") and after == before
    assert sorted(os.listdir(tiny.cache("tiny-a"))) == sorted([NAMES[0], NAMES[3]])


def test_when_every_place_holds_the_users_files_nothing_is_downloaded(tiny, monkeypatch):
    home = tiny.tmp / "home"
    monkeypatch.setenv("NNUMPY_DATA", str(home))
    for folder in (home / "tiny-a", tiny.own("tiny-a"), tiny.cache("tiny-a")):
        put(folder, tiny.a.blobs)
        (folder / NAMES[0]).write_bytes(tiny.b.blobs[NAMES[0]])      # another dataset's genuine file
    before = listing(tiny.tmp)
    with pytest.warns(DatasetWarning), pytest.raises(DatasetNotFoundError) as info:
        load("tiny-a", tiny)
    assert info.value.why == "not replaced"
    assert "does not replace files it did not download" in str(info.value) and "move them" in str(info.value)
    assert tiny.a.mirror.requests == [] and listing(tiny.tmp) == before
    back = pickle.loads(pickle.dumps(info.value))
    assert str(back) == str(info.value)


def test_ctrl_c_during_the_fallback_download_leaves_nothing(tiny):
    root = tiny.tmp / "root"
    put(root, tiny.a.blobs)
    big = bytes(range(256)) * 4000                       # a body long enough to be interrupted mid-way
    tiny.a.mirror.server.files[NAMES[0]] = big
    (root / NAMES[0]).write_bytes(b"broken")
    before = listing(tiny.tmp)
    tiny.a.mirror.fault("m", "interrupt")
    with pytest.warns(DatasetWarning), pytest.raises(KeyboardInterrupt):
        load("tiny-a", tiny, root=root)
    assert listing(tiny.tmp) == before                   # not even an empty download folder


def test_disk_full_or_read_only_download_folder_leaves_everything(tiny, monkeypatch):
    own = tiny.own("tiny-a")
    put(own, tiny.a.blobs)
    (own / NAMES[1]).write_bytes(b"corrupt")
    before = listing(tiny.tmp)
    with monkeypatch.context() as mp:
        mp.setattr(_fileio, "open", DiskFull(10), raising=False)
        with pytest.warns(DatasetWarning), pytest.raises(OSError) as info:
            load("tiny-a", tiny)
    assert info.value.errno == errno.ENOSPC and str(own / NAMES[1]) in str(info.value)
    with monkeypatch.context() as mp:
        mp.setattr(_fileio.tempfile, "mkstemp", refuse_mkstemp)
        with pytest.warns(DatasetWarning), pytest.raises(PermissionError, match=r"cannot write in the folder"):
            load("tiny-a", tiny)
    assert listing(tiny.tmp) == before
    assert len(tiny.a.mirror.requests) == 1       # the read-only folder is refused before connecting


def test_checksum_error_names_the_registered_file_and_pickles(tiny):
    fs = tiny.b.spec.files["train_images"]
    with pytest.raises(ChecksumError) as info:
        fs.check(tiny.a.blobs[NAMES[0]], "x.gz")
    assert info.value.matches == (("tiny-a", "train_images", NAMES[0]),)
    back = pickle.loads(pickle.dumps(info.value))
    assert back.matches == info.value.matches and str(back) == str(info.value)


def test_real_mnist_in_root_is_not_replaced_by_fashion_mnist(mnist_dir, fashion_dir, tmp_path, monkeypatch):
    """The tester's example with the real files: root holds MNIST, the user
    loads Fashion-MNIST with downloads allowed (from a local mirror)."""
    monkeypatch.setenv("NNUMPY_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", ())
    root = tmp_path / "root"
    root.mkdir()
    for n in NAMES:
        shutil.copy(mnist_dir / n, root / n)
    before = listing(root)
    with Mirror({n: (fashion_dir / n).read_bytes() for n in NAMES}) as m:
        with pytest.warns(DatasetWarning) as caught:
            (x, y), _ = load_dataset("fashion-mnist", root=root, mirrors=[m.url("f")], progress=False)
    assert np.bincount(y).tolist() == [6000] * 10
    assert listing(root) == before
    assert sorted(os.listdir(tmp_path / "data" / "fashion-mnist")) == sorted(NAMES)
    assert "did you mean 'mnist'?" in "\n".join(str(w.message) for w in caught)


@pytest.mark.parametrize("max_bytes", [float("nan"), "5", True, 0, -1, 2.5])
def test_read_idx_checks_its_memory_bound(max_bytes, tmp_path):
    write_idx(np.arange(6, dtype=np.uint8), tmp_path / "a.idx")
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        read_idx(tmp_path / "a.idx", max_bytes=max_bytes)


def test_read_idx_refuses_more_dimensions_than_numpy_has(tmp_path):
    (tmp_path / "d.idx").write_bytes(b"\x00\x00\x08\x41" + b"\x00\x00\x00\x01" * 65 + b"\x00")
    with pytest.raises(IDXFormatError, match="65 dimensions"):
        read_idx(tmp_path / "d.idx")
