"""Data sets and downloads, against a local HTTP server on 127.0.0.1 that can misbehave on purpose."""

from __future__ import annotations

import hashlib
import io
import random
import re
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sr_cli import datasets, download
from sr_cli.datasets import DATASETS, Entry, dataset_images, folder_dataset, registry_entries
from sr_cli.download import download_file
from sr_cli.errors import DownloadError, InputError, UsageError
from http_server import Server, server  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(60)

PAYLOAD = random.Random(0).randbytes(200_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A temp data home, short socket timeouts, no proxy between us and 127.0.0.1."""
    monkeypatch.setenv("SRTOOL_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.setattr(download, "TIMEOUT", 5.0)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, rows: list[tuple[bytes, str]]) -> Path:
    """Write a fake ``<name>.tsv`` of (content, url) rows and point datasets.REGISTRY at it."""
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)
    lines = ["# sha256  bytes  url"]
    lines += [f"{hashlib.sha256(data).hexdigest()}  {len(data)}  {url}" for data, url in rows]
    tsv = folder / f"{name}.tsv"
    tsv.write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(datasets, "REGISTRY", folder)
    return tsv


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((4, 6, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def test_good_download(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    dest = tmp_path / "out" / "f.bin"
    assert download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True) == dest
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]
    # a file already in place is verified, not fetched again
    assert download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True) == dest
    assert server.requests == [("/f.bin", None)]
    # ... really verified: other bytes of the same size are refused, kept, and not fetched again either
    other = bytes(b ^ 0xFF for b in PAYLOAD)
    dest.write_bytes(other)
    with pytest.raises(DownloadError, match=f"checksum mismatch for f.bin: .* in {re.escape(str(dest))}; delete it"):
        download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    assert dest.read_bytes() == other and server.requests == [("/f.bin", None)]


def test_corrupted_download_leaves_nothing(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    server.mode = "corrupt"
    got = hashlib.sha256(bytes(b ^ 0xFF for b in PAYLOAD)).hexdigest()
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DownloadError, match=f"checksum mismatch for f.bin: expected sha256 {PAYLOAD_SHA}, got {got}"):
        download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    assert not dest.parent.exists()  # the folder made for it is gone too


def test_size_mismatch_discards_part(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD[:150_000]
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:1000])
    with pytest.raises(DownloadError, match="size mismatch for f.bin: expected 200000 bytes, server has 150000"):
        download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_is_resumed(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    server.mode = "die_half"
    dest = tmp_path / "f.bin"
    part = tmp_path / "f.bin.part"
    with pytest.raises(DownloadError, match=r"interrupted at 100000 of 200000 bytes .*run the command again to resume"):
        download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    assert part.read_bytes() == PAYLOAD[:100_000]
    assert not dest.exists()

    server.mode = "ok"
    download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    assert server.requests == [("/f.bin", None), ("/f.bin", "bytes=100000-")]
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == PAYLOAD_SHA
    assert not part.exists()


def test_server_ignoring_range_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    server.mode = "ignore_range"
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * 5000)  # not even a prefix of the file
    download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    assert server.requests == [("/f.bin", "bytes=5000-")]
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_refused_range_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    server.files["/f.bin"] = PAYLOAD
    server.mode = "refuse_range"
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * 5000)
    download_file(server.url("/f.bin"), dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    assert server.requests == [("/f.bin", "bytes=5000-"), ("/f.bin", None)]
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_offline_file_names_url_and_folder(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/f.bin"
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(DownloadError) as info:
        download_file(url, dest, PAYLOAD_SHA, len(PAYLOAD), quiet=True)
    message = str(info.value)
    assert message.startswith("cannot reach 127.0.0.1 (")
    assert message.endswith(f": fetch {url} into {dest.parent}")
    assert "\n" not in message
    assert not dest.parent.exists()


def test_offline_dataset_names_list_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    tsv = _registry(tmp_path, monkeypatch, "b100", [(_png(i), f"http://127.0.0.1:{port}/{i}.png") for i in range(3)])
    folder = tmp_path / "home" / "datasets" / "b100"
    with pytest.raises(DownloadError) as info:
        dataset_images("b100", quiet=True)
    assert str(info.value) == (
        f"cannot reach 127.0.0.1: fetch the files listed in {tsv} (3 of 3 missing) into {folder} (or pass --data-dir)"
    )
    zip_url = f"http://127.0.0.1:{port}/DIV2K_valid_HR.zip"
    _registry(tmp_path, monkeypatch, "div2k-valid", [(b"zip", zip_url)])
    with pytest.raises(DownloadError) as info:
        dataset_images("div2k-valid", quiet=True)
    root = tmp_path / "home" / "datasets"
    assert str(info.value) == f"cannot reach 127.0.0.1: fetch {zip_url} into {root} (or pass --data-dir)"
    assert not (tmp_path / "home").exists()  # nothing written while offline


def test_registered_dataset_downloads_once(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pngs = {f"/img_{i:03d}.png": _png(10 * i) for i in (3, 1, 2)}
    server.files.update(pngs)
    _registry(tmp_path, monkeypatch, "urban100", [(data, server.url(path)) for path, data in pngs.items()])
    with pytest.raises(InputError, match="data set urban100 is not downloaded: fetch the files listed in"):
        dataset_images("urban100", download=False)
    assert server.requests == []

    folder = tmp_path / "home" / "datasets" / "urban100"
    expected = [folder / f"img_{i:03d}.png" for i in (1, 2, 3)]
    assert dataset_images("Urban100", quiet=True) == expected
    assert [p.read_bytes() for p in expected] == [pngs[f"/{p.name}"] for p in expected]
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in expected]
    assert len(server.requests) == 3
    assert dataset_images("urban100", download=False) == expected
    assert len(server.requests) == 3


def test_zip_dataset_is_extracted(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, value in (("0802.png", 20), ("0801.png", 10)):
            zf.writestr(f"DIV2K_valid_HR/{name}", _png(value))
    server.files["/DIV2K_valid_HR.zip"] = buf.getvalue()
    _registry(tmp_path, monkeypatch, "div2k-valid", [(buf.getvalue(), server.url("/DIV2K_valid_HR.zip"))])
    root = tmp_path / "home" / "datasets"
    images = dataset_images("div2k-valid", quiet=True)
    assert images == [root / "div2k-valid" / "DIV2K_valid_HR" / n for n in ("0801.png", "0802.png")]
    assert np.asarray(Image.open(images[1]))[0, 0].tolist() == [20, 20, 20]
    assert [p.name for p in root.iterdir()] == ["div2k-valid"]  # zip and temp folder gone
    assert dataset_images("div2k-valid") == images
    assert len(server.requests) == 1


def test_packaged_sets() -> None:
    set5 = dataset_images("set5")
    assert [p.name for p in set5] == ["baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"]
    assert all(p.is_file() for p in set5)
    set14 = dataset_images("set14")
    assert len(set14) == 14
    assert set14[0].name == "baboon.png" and set14[-1].name == "zebra.png"


def test_real_registry_lists() -> None:
    b100, urban, div2k = (registry_entries(n) for n in ("b100", "urban100", "div2k-valid"))
    assert (len(b100), len(urban), len(div2k)) == (100, 100, 1)
    assert b100[0].filename == "img_001_SRF_3_HR.png" and b100[0].size == 337699
    assert div2k == [
        Entry(
            "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
            448993893,
            "https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
            "DIV2K_valid_HR.zip",
        )
    ]


def test_names_and_folders(tmp_path: Path) -> None:
    assert DATASETS == ("set5", "set14", "b100", "urban100", "div2k-valid", "manga109")
    known = "set5, set14, b100, urban100, div2k-valid, manga109"
    with pytest.raises(UsageError, match=f"unknown data set 'set6'; known: {known}"):
        dataset_images("set6")
    with pytest.raises(UsageError, match="manga109 is licensed on request .*pass --data-dir"):
        dataset_images("manga109")

    manga = tmp_path / "manga"
    (manga / "b").mkdir(parents=True)
    for rel in ("b/Z.PNG", "a.jpg", ".hidden.png", "notes.txt"):
        (manga / rel).write_bytes(b"x")
    assert dataset_images("manga109", manga) == [manga / "a.jpg", manga / "b" / "Z.PNG"]
    assert folder_dataset(manga) == [manga / "a.jpg", manga / "b" / "Z.PNG"]


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist or is not a folder"):
        folder_dataset(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=f"no images in {empty}: the folder is empty"):
        folder_dataset(empty)
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.txt").write_text("a")
    (texts / "b.csv").write_text("b")
    with pytest.raises(InputError, match=f"no images in {texts}: 2 files, none of them .bmp .jpeg"):
        folder_dataset(texts)
