"""The downloader and the loaders against a real HTTP server on 127.0.0.1
serving the real MNIST files, with faults injected."""
import gzip
import os
import time

import numpy as np
import pytest

from httpmirror import Mirror
from nnumpy.datasets import (DatasetNotFoundError, DatasetWarning, DownloadError, download, get_spec,
                             load_mnist, read_idx)

LABELS = get_spec("mnist").files["train_labels"]
COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
FAST = dict(timeout=(2.0, 2.0), backoff=0.01, progress=False)


@pytest.fixture(scope="module")
def mnist_files(mnist_dir):
    return {p.name: p.read_bytes() for p in mnist_dir.iterdir() if p.name.endswith(".gz")}


@pytest.fixture
def server(mnist_files):
    with Mirror(mnist_files) as m:
        yield m


def fetch_labels(server, mirrors, dest, **kw):
    urls = [server.url(m) + LABELS.filename for m in mirrors]
    return download(urls, dest, lambda data: LABELS.verify(data, str(dest)), **{**FAST, **kw})


def assert_clean(folder, allowed=()):
    assert sorted(os.listdir(folder)) == sorted(allowed), "partial or unverified file left behind"


def test_end_to_end_download_and_load(server, mnist_dir, tmp_path):
    (x, y), (xt, yt) = load_mnist(root=tmp_path, mirrors=[server.url("m1")], progress=False)
    assert x.shape == (60000, 28, 28) and xt.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == COUNTS
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert int(x.sum(dtype=np.int64)) == int(read_idx(mnist_dir / "train-images-idx3-ubyte.gz").sum(dtype=np.int64))
    assert int(xt.sum(dtype=np.int64)) == int(read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz").sum(dtype=np.int64))
    assert_clean(tmp_path, [LABELS.filename, "train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                            "t10k-labels-idx1-ubyte.gz"])
    assert all(h.get("Accept-Encoding") == "identity" for _, _, h in server.requests)
    # a second load uses the verified local files: no request
    n = len(server.requests)
    load_mnist(root=tmp_path, mirrors=[server.url("m1")], progress=False)
    assert len(server.requests) == n


def test_404_on_first_mirror_uses_the_second(server, tmp_path):
    server.fault("m1", "404")
    fetch_labels(server, ["m1", "m2"], tmp_path / LABELS.filename)
    assert [m for m, _, _ in server.requests] == ["m1", "m2"]     # 404 is not retried
    assert_clean(tmp_path, [LABELS.filename])


def test_500_then_200_is_retried(server, tmp_path):
    server.fault("m1", "500-once")
    fetch_labels(server, ["m1"], tmp_path / LABELS.filename)
    assert [m for m, _, _ in server.requests] == ["m1", "m1"]
    assert_clean(tmp_path, [LABELS.filename])


@pytest.mark.parametrize("fault,reason", [
    ("404", "HTTP 404"),
    ("500", "HTTP 500"),
    ("cut", "(truncated|broke mid-body|connection)"),
    ("wrong", "verification failed"),
    ("html", "HTML page"),
    ("html-octet", "HTML/XML page"),
])
def test_every_failure_is_reported_and_leaves_nothing(server, tmp_path, fault, reason):
    server.fault("a", fault)
    server.fault("b", "404")
    with pytest.raises(DownloadError) as info:
        fetch_labels(server, ["a", "b"], tmp_path / LABELS.filename, retries=1)
    text = str(info.value)
    assert server.url("a") + LABELS.filename in text and server.url("b") + LABELS.filename in text
    import re
    assert re.search(reason, text), text
    assert_clean(tmp_path)


def test_stalled_server_times_out_within_the_bound(mnist_files, tmp_path):
    with Mirror(mnist_files, stall_seconds=5) as server:
        server.fault("slow", "stall")
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="timed out"):
            fetch_labels(server, ["slow"], tmp_path / LABELS.filename, timeout=(1.0, 0.5), retries=0)
        assert time.monotonic() - t0 < 3.0
    assert_clean(tmp_path)


def test_slow_drip_is_bounded_by_max_seconds(server, tmp_path):
    server.fault("drip", "drip")
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="longer than 0.5 s"):
        fetch_labels(server, ["drip"], tmp_path / LABELS.filename, retries=0, max_seconds=0.5)
    assert time.monotonic() - t0 < 3.0
    assert_clean(tmp_path)


def test_gzip_content_encoding_does_not_change_the_bytes(server, tmp_path):
    server.fault("gz", "gzip-encoding")
    dest = fetch_labels(server, ["gz"], tmp_path / LABELS.filename)
    assert open(dest, "rb").read()[:2] == b"\x1f\x8b"
    assert np.bincount(read_idx(dest)).tolist() == COUNTS
    assert_clean(tmp_path, [LABELS.filename])


def test_ctrl_c_mid_download_leaves_nothing(server, tmp_path):
    server.fault("int", "interrupt")
    with pytest.raises(KeyboardInterrupt):
        fetch_labels(server, ["int"], tmp_path / LABELS.filename)
        time.sleep(2)                     # in case the interrupt lands after the download
    assert_clean(tmp_path)


def test_corrupt_file_in_root_is_kept_and_a_verified_copy_is_downloaded_beside(server, mnist_dir, tmp_path,
                                                                              monkeypatch):
    # root is the user's folder: a file there that fails verification is never replaced; the fresh
    # copy goes to the download folder ($NNUMPY_DATA/mnist here) and is used from there
    monkeypatch.setenv("NNUMPY_DATA", str(tmp_path / "data"))
    root = tmp_path / "root"
    root.mkdir()
    for p in mnist_dir.iterdir():
        if p.name.endswith(".gz"):
            (root / p.name).write_bytes(p.read_bytes())
    bad = bytearray((root / LABELS.filename).read_bytes())
    bad[-100] ^= 0xFF
    (root / LABELS.filename).write_bytes(bytes(bad))
    with pytest.warns(DatasetWarning, match="train-labels-idx1-ubyte.gz"):
        (x, y), _ = load_mnist(root=root, mirrors=[server.url("m")], progress=False)
    assert np.bincount(y).tolist() == COUNTS
    assert [n for _, n, _ in server.requests] == [LABELS.filename]      # only the bad file
    assert (root / LABELS.filename).read_bytes() == bytes(bad)          # the user's file is untouched
    assert (tmp_path / "data" / "mnist" / LABELS.filename).read_bytes() == (mnist_dir / LABELS.filename).read_bytes()
    with pytest.warns(DatasetWarning) as caught:                        # the next call: no download
        load_mnist(root=root, mirrors=[server.url("m")], progress=False)
    assert any("left as it is" in str(w.message) for w in caught)
    assert len(server.requests) == 1


def test_corrupt_file_is_reported_offline(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NNUMPY_DATA", str(tmp_path / "empty"))    # no verified copy elsewhere to fall back on
    for p in mnist_dir.iterdir():
        if p.name.endswith(".gz"):
            (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02ab"))
    with pytest.warns(DatasetWarning), pytest.raises(DatasetNotFoundError) as info:
        load_mnist(root=tmp_path, download=False)
    text = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in text and "download=False" in text and str(tmp_path) in text


def test_offline_switch_names_missing_files_folders_and_sources(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NNUMPY_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(root=tmp_path, mirrors=[server.url("m")])
    text = str(info.value)
    assert server.requests == []
    assert "NNUMPY_OFFLINE" in text and str(tmp_path) in text
    assert all(n in text for n in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"))
    assert "ossci-datasets" in text and "python -m nnumpy.datasets download mnist" in text


def test_search_path_finds_nnumpy_data_then_system_copies(mnist_dir, tmp_path, monkeypatch):
    from nnumpy.datasets import loaders
    system = tmp_path / "system"
    (system / "mnist").mkdir(parents=True)
    for p in mnist_dir.iterdir():
        if p.name.endswith(".gz"):
            (system / "mnist" / p.name).write_bytes(p.read_bytes())
    monkeypatch.setattr(loaders, "SYSTEM_DATA_DIRS", (str(system),))
    monkeypatch.setenv("NNUMPY_DATA", str(tmp_path / "home"))
    got = loaders.fetch("mnist", download=False)
    assert {str(p.parent) for _, p, _ in got.values()} == {str(system / "mnist")}
    assert loaders.search_dirs("mnist") == [tmp_path / "home" / "mnist", system / "mnist"]
    # a verified copy under $NNUMPY_DATA wins
    (tmp_path / "home" / "mnist").mkdir(parents=True)
    (tmp_path / "home" / "mnist" / LABELS.stem).write_bytes(gzip.decompress((mnist_dir / LABELS.filename).read_bytes()))
    got = loaders.fetch("mnist", download=False)
    assert got["train_labels"][1] == tmp_path / "home" / "mnist" / LABELS.stem
    assert got["train_labels"][2].startswith("sha256")


def test_download_folder_defaults(monkeypatch, tmp_path):
    from nnumpy.datasets import loaders
    monkeypatch.delenv("NNUMPY_DATA", raising=False)
    checkout = loaders._checkout_root()
    home = loaders.data_home()
    if checkout is not None:
        assert home == checkout / "datasets"
    monkeypatch.setattr(loaders, "_checkout_root", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert loaders.download_dir("fashion_mnist") == tmp_path / "nnumpy" / "fashion-mnist"


def test_loader_download_error_lists_urls_and_gives_a_hint(server, tmp_path):
    server.fault("gone", "404")
    with pytest.raises(DownloadError) as info:
        load_mnist(root=tmp_path, mirrors=[server.url("gone")], progress=False, retries=0)
    text = str(info.value)
    assert "HTTP 404" in text and server.url("gone") in text
    assert "Put the four files in that folder" in text and "NNUMPY_DATA=DIR" in text and "NNUMPY_OFFLINE=1" in text
    assert_clean(tmp_path)


@pytest.mark.parametrize("where", ["root", "NNUMPY_DATA"])
def test_a_failed_download_leaves_no_empty_folders(server, tmp_path, monkeypatch, where):
    server.fault("gone", "404")
    (tmp_path / "keep").mkdir()                            # a folder that was there stays
    base = tmp_path / "keep" / "new" / "deeper"
    kw = {"root": base / "mnist"} if where == "root" else {}
    monkeypatch.setenv("NNUMPY_DATA", str(base))
    with pytest.raises(DownloadError):
        load_mnist(mirrors=[server.url("gone")], progress=False, retries=0, **kw)
    assert_clean(tmp_path, ["keep"])
    assert_clean(tmp_path / "keep")


def test_refused_connection_is_reported(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                    # nothing listens there now
    with pytest.raises(DownloadError, match="connection failed"):
        download([f"http://127.0.0.1:{port}/x.gz"], tmp_path / "x.gz", lambda d: None, retries=1,
                 backoff=0.01, progress=False)
    assert_clean(tmp_path)
