"""The weights catalogue: the real one well formed, and fetching on demand against a local server on 127.0.0.1
that serves synthetic files in the official layouts under a test catalogue whose hashes match them."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from http_server import Server, server  # noqa: F401 (a fixture)
from sr_cli import catalogue, download
from sr_cli.catalogue import Entry
from sr_cli.cli.app import app
from sr_cli.models import SRVGGNetCompact
from sr_cli.pipeline import Upscaler
from sr_cli.registry import MODELS
from tolerances import FLIPPED_LEVELS

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


def srtool(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_real_catalogue_is_well_formed() -> None:
    entries = catalogue.catalogue()
    assert len(entries) >= 15
    assert {"edsr-baseline-x4", "edsr-x2", "mdsr-official", "realesrgan-x4plus", "realesr-general-x4v3",
            "realesr-animevideov3", "realesrgan-x2plus", "realesrgan-x4plus-anime-6b", "rrdb-esrgan-x4"} <= set(entries)
    for key, e in entries.items():
        assert key == catalogue.canonical(e.name) and e.url.startswith("https://")
        assert key not in MODELS  # a registry name would hide the entry: -m NAME runs the registry's model
        assert re.fullmatch(r"[0-9a-f]{64}|[0-9a-f]{8}", e.sha256), e.name
        assert (e.size is None) == (len(e.sha256) == 8) and (e.size is None or e.size > 1_000_000)
        assert e.architecture in MODELS and set(e.scales) <= set(MODELS[e.architecture].scales)
        assert e.file.endswith((".pt", ".pth")) and e.licence and e.source and e.summary
        if len(e.sha256) == 8:  # EDSR-PyTorch names each file by its hash's first 8 digits
            assert e.file.endswith(f"-{e.sha256}.pt")
        if e.denoise_pair:
            assert entries[e.denoise_pair].architecture == e.architecture
    assert catalogue.find("RealESRGAN_x4plus") is entries["realesrgan-x4plus"]
    assert entries["edsr-baseline-x4"].published == {"set5": {"x4": 32.09}}


def _compact_file(seed: int) -> bytes:
    """A small SRVGGNetCompact in Real-ESRGAN's layout ({"params": state dict}), as bytes."""
    torch.manual_seed(seed)
    net = SRVGGNetCompact(4, num_feat=8, num_conv=2)
    for p in net.parameters():
        p.data.uniform_(-0.3, 0.3)
    buf = io.BytesIO()
    torch.save({"params": net.state_dict()}, buf)
    return buf.getvalue()


@pytest.fixture
def served(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Entry]:  # noqa: F811
    """Two compact files on the server, a test catalogue naming them, an empty cache, no proxy."""
    monkeypatch.setenv("SRTOOL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SRTOOL_OFFLINE", raising=False)
    monkeypatch.delenv("SRTOOL_WEIGHTS_MIRROR", raising=False)
    monkeypatch.setattr(download, "TIMEOUT", 5.0)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    entries = {}
    for name, seed, pair in (("test-general", 1, "test-wdn"), ("test-wdn", 2, None)):
        data = _compact_file(seed)
        server.files[f"/w/{name}.pth"] = data
        entries[name] = Entry(name, "compact", (4,), server.url(f"/w/{name}.pth"), hashlib.sha256(data).hexdigest(),
                              len(data), f"{name}.pth", "BSD-3-Clause", "test", "a test file", {}, pair)
    monkeypatch.setattr(catalogue, "catalogue", lambda: entries)
    return entries


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(path)
    return path


def test_first_use_fetches_then_reuses(served: dict[str, Entry], server: Server, tmp_path: Path) -> None:  # noqa: F811
    src = _image(tmp_path)
    code, out, err = srtool("upscale", str(src), "-m", "test-general", "-o", str(tmp_path / "a.png"), "--json",
                            "--precision", "fp32", "--device", "cpu")
    assert code == 0, err
    assert json.loads(out)["model"] == "compact" and server.requests == [("/w/test-general.pth", None)]
    cached = tmp_path / "cache" / "weights" / "test-general.pth"
    assert cached.read_bytes() == server.files["/w/test-general.pth"]
    want = Upscaler("compact", 4, weights=cached, device="cpu", precision="fp32").upscale_uint8(
        np.asarray(Image.open(src)))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), want)
    code, _, err = srtool("upscale", str(src), "-m", "TEST_GENERAL", "-o", str(tmp_path / "b.png"))
    assert code == 0, err
    assert len(server.requests) == 1  # the cached file is used: no second request


def test_a_file_that_fails_the_check_is_deleted_and_reported(served: dict[str, Entry], server: Server,  # noqa: F811
                                                             tmp_path: Path) -> None:
    server.mode = "corrupt"
    code, _, err = srtool("models", "fetch", "test-general")
    assert code == 6 and "checksum mismatch for test-general.pth" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cache" / "weights").exists()  # nothing placed, nothing left


def test_an_interrupted_download_resumes(served: dict[str, Entry], server: Server, tmp_path: Path) -> None:  # noqa: F811
    server.mode = "die_half"
    code, _, err = srtool("models", "fetch", "test-general")
    assert code == 6 and "interrupted" in err and "run the command again to resume it" in err
    part = tmp_path / "cache" / "weights" / "test-general.pth.part"
    half = part.stat().st_size
    assert 0 < half < served["test-general"].size
    server.mode = "ok"
    code, _, err = srtool("models", "fetch", "test-general")
    assert code == 0, err
    assert server.requests[-1] == ("/w/test-general.pth", f"bytes={half}-") and not part.exists()
    assert (tmp_path / "cache" / "weights" / "test-general.pth").read_bytes() == server.files["/w/test-general.pth"]


def test_a_server_ignoring_range_is_read_again(served: dict[str, Entry], server: Server, tmp_path: Path) -> None:  # noqa: F811
    server.mode = "die_half"
    srtool("models", "fetch", "test-general")
    server.mode = "ignore_range"
    code, _, err = srtool("models", "fetch", "test-general")
    assert code == 0, err
    assert (tmp_path / "cache" / "weights" / "test-general.pth").read_bytes() == server.files["/w/test-general.pth"]


def test_offline_names_url_hash_and_path(served: dict[str, Entry], server: Server, tmp_path: Path,  # noqa: F811
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    entry = served["test-general"]
    for args, env in ((["--offline"], None), ([], "1")):
        if env:
            monkeypatch.setenv("SRTOOL_OFFLINE", env)
        code, _, err = srtool("upscale", str(_image(tmp_path)), "-m", "test-general", *args)
        assert code == 6 and len(err.strip().splitlines()) == 1
        assert entry.url in err and entry.sha256 in err and str(tmp_path / "cache" / "weights" / "test-general.pth") in err
    assert server.requests == []


def test_a_carried_file_is_registered_after_its_check(served: dict[str, Entry], server: Server,  # noqa: F811
                                                      tmp_path: Path) -> None:
    good, bad = tmp_path / "good.pth", tmp_path / "bad.pth"
    good.write_bytes(server.files["/w/test-general.pth"])
    bad.write_bytes(server.files["/w/test-wdn.pth"])
    code, _, err = srtool("models", "add", "test-general", str(bad))
    assert code == 3 and "is not test-general" in err
    code, _, err = srtool("models", "add", "test-general", str(good))
    assert code == 0, err
    code, _, err = srtool("upscale", str(_image(tmp_path)), "-m", "test-general", "--offline")
    assert code == 0, err
    assert server.requests == []


def test_mirror_replaces_the_host(served: dict[str, Entry], server: Server, tmp_path: Path,  # noqa: F811
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/mirror/test-wdn.pth"] = server.files["/w/test-wdn.pth"]
    monkeypatch.setenv("SRTOOL_WEIGHTS_MIRROR", server.url("/mirror/"))
    code, _, err = srtool("models", "fetch", "test-wdn")
    assert code == 0, err
    assert server.requests == [("/mirror/test-wdn.pth", None)]


def test_denoise_blends_the_twin_weight_by_weight(served: dict[str, Entry], server: Server,  # noqa: F811
                                                  tmp_path: Path) -> None:
    src = _image(tmp_path)
    code, _, err = srtool("upscale", str(src), "-m", "test-general", "--denoise", "0.3", "-o", str(tmp_path / "d.png"),
                          "--precision", "fp32", "--device", "cpu")
    assert code == 0, err
    states = [torch.load(io.BytesIO(server.files[f"/w/{n}.pth"]), weights_only=True)["params"]
              for n in ("test-general", "test-wdn")]
    net = SRVGGNetCompact(4, num_feat=8, num_conv=2).eval()
    net.load_state_dict({k: 0.3 * states[0][k] + 0.7 * states[1][k] for k in states[0]})
    x = torch.from_numpy(np.array(Image.open(src))).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        want = net(x).clamp(0, 1).mul(255).round()[0].permute(1, 2, 0).numpy()
    got = np.asarray(Image.open(tmp_path / "d.png")).astype(np.float32)
    assert np.abs(got - want).max() <= FLIPPED_LEVELS  # float sums in another order may flip a rounding
    code, _, err = srtool("upscale", str(src), "-m", "test-wdn", "--denoise", "0.3")
    assert code == 2 and "--denoise" in err


def test_models_lists_the_catalogue(served: dict[str, Entry], server: Server, tmp_path: Path) -> None:  # noqa: F811
    srtool("models", "fetch", "test-wdn")
    code, out, err = srtool("models", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)["catalogue"]}
    assert rows["test-wdn"]["cached"] is True and rows["test-general"]["cached"] is False
    assert rows["test-general"] | {"cached": None} == {
        "name": "test-general", "architecture": "compact", "scales": [4], "size": served["test-general"].size,
        "licence": "BSD-3-Clause", "source": "test", "cached": None, "set5_psnr": None,
        "url": served["test-general"].url, "sha256": served["test-general"].sha256}


def test_train_init_takes_a_catalogue_name(served: dict[str, Entry], server: Server, tmp_path: Path) -> None:  # noqa: F811
    data = tmp_path / "hr"
    data.mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(data / f"{i}.png")
    code, _, err = srtool("train", "-m", "compact", "-s", "4", "-d", str(data), "--val-data", str(data), "--init",
                          "test-general", "--steps", "1", "--batch", "1", "--patch", "8", "--val-every", "1",
                          "--workers", "0", "--device", "cpu", "-o", str(tmp_path / "run"))
    assert code == 0, err
    assert server.requests == [("/w/test-general.pth", None)]
    assert "--init: copied 11 of 11 tensors" in err and "num_feat 8, num_conv 2" in err


def test_a_cached_file_is_checked_again_before_use(served: dict[str, Entry], server: Server,  # noqa: F811
                                                   tmp_path: Path) -> None:
    assert srtool("models", "fetch", "test-general")[0] == 0
    cached = tmp_path / "cache" / "weights" / "test-general.pth"
    cached.write_bytes(server.files["/w/test-wdn.pth"])  # same size, other weights
    code, _, err = srtool("upscale", str(_image(tmp_path)), "-m", "test-general", "--offline")
    assert code == 6 and "checksum mismatch for test-general.pth" in err and f"delete {cached}" in err
    code, _, err = srtool("upscale", str(_image(tmp_path)), "-m", "test-general", "--weights", str(cached))
    assert code == 2 and "--weights cannot go with it" in err
