"""Offline tests of dfijax.fetch and scripts/fetch_vgg19.py against a loopback HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import pathlib
import random
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from dfijax import fetch
from dfijax.fetch import KNOWN_FILES, FetchError, download, fetch_known, md5_file, sha256_file

REPO = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "fetch_vgg19.py"


@dataclass
class ServerState:
    """What the handler serves and what it saw."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes, first request only
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    bytes_sent: list[int] = field(default_factory=list)  # body bytes served per request
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    state: ServerState  # set per server in the fixture

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        pass

    def do_GET(self) -> None:
        state = self.state
        range_header = self.headers.get("Range")
        with state.lock:
            state.requests.append((self.path, range_header))
            blob = state.blobs.get(self.path)
            drop = state.drop_after.pop(self.path, None)
        if blob is None:
            self._sent(0)
            self.send_error(404)
            return
        start, status = 0, 200
        if range_header and not state.ignore_range:
            match = re.fullmatch(r"bytes=(\d+)-", range_header)
            assert match, range_header
            start = int(match.group(1))
            if start >= len(blob):
                self._sent(0)
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(blob)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = blob[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
        self.end_headers()
        if drop is not None:
            body = body[:drop]
            self.close_connection = True
        # Record before writing so the count is in place when the client finishes reading.
        self._sent(len(body))
        self.wfile.write(body)
        self.wfile.flush()

    def _sent(self, n: int) -> None:
        with self.state.lock:
            self.state.bytes_sent.append(n)


@dataclass
class Server:
    state: ServerState
    port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, path: str, blob: bytes) -> str:
        self.state.blobs[path] = blob
        return self.url(path)


@pytest.fixture
def server() -> Iterator[Server]:
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Server(state, httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "_BACKOFF_S", 0.0)


def _blob(n: int = 3 * 1024 * 1024 + 12345, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_matches_blob_and_verifies_sha256_prefix_and_md5(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob()
    url = server.add("/w.pth", blob)
    dest = tmp_path / "sub" / "w.pth"
    out = download(
        url, dest, sha256=_sha(blob)[:8], md5=hashlib.md5(blob).hexdigest(), size=len(blob), chunk_size=64 * 1024
    )
    assert out == dest
    assert dest.read_bytes() == blob
    assert not (tmp_path / "sub" / "w.pth.part").exists()
    assert server.state.requests == [("/w.pth", None)]
    assert sha256_file(dest) == _sha(blob)
    assert md5_file(dest) == hashlib.md5(blob).hexdigest()


def test_full_sha256_uppercase_is_accepted(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(100_000, seed=1)
    url = server.add("/a.bin", blob)
    out = download(url, tmp_path / "a.bin", sha256=_sha(blob).upper())
    assert out.read_bytes() == blob


def test_resume_from_partial_file_requests_only_the_rest(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(seed=2)
    url = server.add("/r.pth", blob)
    dest = tmp_path / "r.pth"
    have = 1_000_003
    (tmp_path / "r.pth.part").write_bytes(blob[:have])
    download(url, dest, sha256=_sha(blob), size=len(blob))
    assert dest.read_bytes() == blob
    assert server.state.requests == [("/r.pth", f"bytes={have}-")]
    assert server.state.bytes_sent == [len(blob) - have]


def test_complete_part_file_and_416_is_accepted(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(200_000, seed=3)
    url = server.add("/c.pth", blob)
    (tmp_path / "c.pth.part").write_bytes(blob)
    out = download(url, tmp_path / "c.pth", sha256=_sha(blob)[:10])
    assert out.read_bytes() == blob
    assert server.state.requests == [("/c.pth", f"bytes={len(blob)}-")]
    assert server.state.bytes_sent == [0]


def test_server_without_range_support_restarts_from_zero(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(seed=4)
    url = server.add("/n.pth", blob)
    server.state.ignore_range = True
    (tmp_path / "n.pth.part").write_bytes(blob[:500_000])
    out = download(url, tmp_path / "n.pth", sha256=_sha(blob), size=len(blob))
    assert out.read_bytes() == blob
    assert server.state.requests == [("/n.pth", "bytes=500000-")]
    assert server.state.bytes_sent == [len(blob)]


def test_dropped_connection_is_retried_and_resumed(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(seed=5)
    url = server.add("/d.pth", blob)
    cut = 1_234_567
    server.state.drop_after["/d.pth"] = cut
    out = download(url, tmp_path / "d.pth", sha256=_sha(blob), size=len(blob), chunk_size=64 * 1024)
    assert out.read_bytes() == blob
    assert server.state.requests == [("/d.pth", None), ("/d.pth", f"bytes={cut}-")]
    assert server.state.bytes_sent == [cut, len(blob) - cut]


def test_dropped_connection_without_retries_keeps_part_for_later(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(seed=6)
    url = server.add("/k.pth", blob)
    server.state.drop_after["/k.pth"] = 700_000
    dest = tmp_path / "k.pth"
    with pytest.raises(FetchError, match="run the command again") as info:
        download(url, dest, size=len(blob), retries=0)
    assert "\n" not in str(info.value)
    assert (tmp_path / "k.pth.part").read_bytes() == blob[:700_000]
    assert not dest.exists()
    # The next run resumes where the first stopped.
    assert download(url, dest, size=len(blob)).read_bytes() == blob
    assert server.state.requests[-1] == ("/k.pth", "bytes=700000-")


def test_checksum_mismatch_raises_and_cleans_up(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(300_000, seed=7)
    url = server.add("/bad.pth", blob)
    dest = tmp_path / "bad.pth"
    with pytest.raises(FetchError) as info:
        download(url, dest, sha256="00000000")
    message = str(info.value)
    assert "checksum" in message and "\n" not in message
    assert "expected sha256 prefix 00000000" in message
    assert _sha(blob)[:8] in message
    assert not dest.exists()
    assert not (tmp_path / "bad.pth.part").exists()


def test_md5_mismatch_raises(server: Server, tmp_path: pathlib.Path) -> None:
    url = server.add("/m.h5", _blob(50_000, seed=8))
    with pytest.raises(FetchError, match="checksum mismatch for m.h5: expected md5"):
        download(url, tmp_path / "m.h5", md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_reported_by_server_fails_fast(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(50_000, seed=9)
    url = server.add("/s.bin", blob)
    with pytest.raises(FetchError, match=f"server reports {len(blob)} bytes, expected 123"):
        download(url, tmp_path / "s.bin", size=123)
    assert len(server.state.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_unreachable_url_raises_fetch_error(tmp_path: pathlib.Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.pth"
    with pytest.raises(FetchError) as info:
        download(url, tmp_path / "x.pth", retries=1, timeout=2.0)
    assert not isinstance(info.value, OSError)
    message = str(info.value)
    assert message.startswith(f"cannot reach {url}") and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_http_404_is_not_retried(server: Server, tmp_path: pathlib.Path) -> None:
    with pytest.raises(FetchError, match="HTTP 404"):
        download(server.url("/missing.pth"), tmp_path / "missing.pth")
    assert len(server.state.requests) == 1


def test_unknown_known_name_lists_choices(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FetchError, match="torchvision") as info:
        fetch_known("alexnet", tmp_path)
    assert "keras" in str(info.value) and "gatys" in str(info.value)


def test_known_files_table() -> None:
    tv = KNOWN_FILES["torchvision"]
    assert tv.url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert (tv.size, tv.sha256, tv.source_format) == (574673361, "dcbb9e9d", "torchvision_pth")
    keras = KNOWN_FILES["keras"]
    assert keras.url.endswith("/vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert (keras.md5, keras.source_format) == ("253f8cb515780f3b799900260a226db6", "keras_h5")
    gatys = KNOWN_FILES["gatys"]
    assert gatys.url == "https://bethgelab.org/media/uploads/pytorch_models/vgg_conv.pth"
    assert (gatys.sha256, gatys.md5, gatys.source_format) == (None, None, "gatys_pth")
    assert {k.depth for n, k in KNOWN_FILES.items() if not n.endswith("16")} == {19}
    tv16 = KNOWN_FILES["torchvision16"]
    assert tv16.url == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert (tv16.size, tv16.sha256, tv16.source_format, tv16.depth) == (553433881, "397923af", "torchvision_pth", 16)
    keras16 = KNOWN_FILES["keras16"]
    assert keras16.url.endswith("/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert (keras16.size, keras16.md5, keras16.source_format, keras16.depth) == (
        58889256,
        "6d6bbae143d832006294945121d1f1fc",
        "keras_h5",
        16,
    )
    # converted names: VGG-16 files never match the VGG-19 default glob weights/vgg19*.safetensors
    assert (tv16.converted_name, keras16.converted_name, tv.converted_name) == (
        "vgg16_torchvision.safetensors",
        "vgg16_keras.safetensors",
        "vgg19_torchvision.safetensors",
    )


def test_fetch_known_with_url_override(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(80_000, seed=10)
    url = server.add("/mirror/vgg_conv.pth", blob)
    out = fetch_known("gatys", tmp_path, url=url)
    assert out == tmp_path / "vgg_conv.pth"
    assert out.read_bytes() == blob


def test_progress_is_monotonic_and_ends_at_total(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(seed=11)
    url = server.add("/p.pth", blob)
    calls: list[tuple[int, int | None]] = []
    download(url, tmp_path / "p.pth", progress=lambda d, t: calls.append((d, t)), chunk_size=256 * 1024)
    done = [d for d, _ in calls]
    assert len(calls) >= len(blob) // (256 * 1024)
    assert all(b > a for a, b in zip(done, done[1:]))
    assert done[-1] == len(blob)
    assert {t for _, t in calls} == {len(blob)}


def test_existing_verified_dest_makes_no_request(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(60_000, seed=12)
    url = server.add("/e.pth", blob)
    dest = tmp_path / "e.pth"
    dest.write_bytes(blob)
    assert download(url, dest, sha256=_sha(blob)[:8], size=len(blob)) == dest
    assert server.state.requests == []


def test_existing_corrupt_dest_is_replaced(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(60_000, seed=13)
    url = server.add("/f.pth", blob)
    dest = tmp_path / "f.pth"
    dest.write_bytes(b"not the weights")
    assert download(url, dest, sha256=_sha(blob)).read_bytes() == blob
    assert len(server.state.requests) == 1


def _run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_script_downloads_with_overrides(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(seed=14)
    filename = KNOWN_FILES["torchvision"].filename
    url = server.add(f"/models/{filename}", blob)
    dest = tmp_path / "weights"
    proc = _run_script(
        "torchvision",
        "--url",
        url,
        "--dest",
        str(dest),
        "--no-convert",
        "--sha256",
        _sha(blob)[:8],
        "--size",
        str(len(blob)),
    )
    assert proc.returncode == 0, proc.stderr
    assert (dest / filename).read_bytes() == blob
    assert "verified" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_script_checksum_error_is_one_line(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(200_000, seed=15)
    filename = KNOWN_FILES["torchvision"].filename
    url = server.add(f"/models/{filename}", blob)
    proc = _run_script(
        "torchvision",
        "--url",
        url,
        "--dest",
        str(tmp_path),
        "--no-convert",
        "--sha256",
        "deadbeef",
        "--size",
        str(len(blob)),
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: checksum mismatch")
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_complete_part_of_known_size_needs_no_request(server: Server, tmp_path: pathlib.Path) -> None:
    blob = _blob(70_000, seed=16)
    url = server.add("/q.pth", blob)
    (tmp_path / "q.pth.part").write_bytes(blob)
    out = download(url, tmp_path / "q.pth", size=len(blob), md5=hashlib.md5(blob).hexdigest())
    assert out.read_bytes() == blob
    assert server.state.requests == []


def test_fetch_then_convert_end_to_end(server: Server, tmp_path: pathlib.Path) -> None:
    """A seeded torch VGG-19 saved as torchvision saves it, served on loopback, fetched, converted and
    loaded: its features match the torch net."""
    import io

    import jax.numpy as jnp
    import numpy as np
    import torch

    from benchmarks import torch_reference as tr
    from dfijax.vgg import VGG19
    from dfijax.weights import load_vgg19
    from tests.conftest import smooth_images

    net = tr.seeded_vgg19(seed=7)
    buf = io.BytesIO()
    torch.save(tr.torchvision_state_dict(net), buf)
    blob = buf.getvalue()
    url = server.add(f"/models/{KNOWN_FILES['torchvision'].filename}", blob)
    proc = _run_script(
        "torchvision", "--url", url, "--dest", str(tmp_path), "--sha256", _sha(blob)[:8], "--size", str(len(blob))
    )
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "vgg19_torchvision.safetensors"
    assert f"wrote {out}" in proc.stdout
    w = load_vgg19(out)
    assert w.pretrained and w.meta["source_format"] == "torchvision_pth" and w.meta["source_sha256"] == _sha(blob)
    x = smooth_images(1, 33, 35, seed=2)
    ours = VGG19().apply(w.variables, jnp.asarray(x), taps=("relu2_2", "relu5_1"))
    with torch.no_grad():
        ref = net(tr.preprocess(x, "torchvision"), ["relu2_2", "relu5_1"])
    for t in ("relu2_2", "relu5_1"):
        r = ref[t].permute(0, 2, 3, 1).numpy()
        assert np.linalg.norm(np.asarray(ours[t]) - r) / np.linalg.norm(r) < 1e-4


def test_fetch_then_convert_vgg16_keras_end_to_end(server: Server, tmp_path: pathlib.Path) -> None:
    """A seeded torch VGG-16 in Keras' .h5 layout, served on loopback, fetched as keras16 and converted to
    vgg16_keras.safetensors: a VGG-16 file whose features match the torch net (Caffe preprocessing)."""
    import h5py
    import jax.numpy as jnp
    import numpy as np
    import torch

    from benchmarks import torch_reference as tr
    from dfijax.vgg import VGG16
    from dfijax.weights import load_vgg
    from tests.conftest import smooth_images

    net = tr.seeded_vgg(seed=8, depth=16)
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        for group, (k, b) in tr.keras_arrays(net).items():
            f.create_dataset(f"{group}/{group}_W_1:0", data=k)
            f.create_dataset(f"{group}/{group}_b_1:0", data=b)
    blob = src.read_bytes()
    url = server.add(f"/vgg16/{KNOWN_FILES['keras16'].filename}", blob)
    dest = tmp_path / "weights"
    proc = _run_script(
        "keras16", "--url", url, "--dest", str(dest), "--sha256", _sha(blob)[:8], "--size", str(len(blob))
    )
    assert proc.returncode == 0, proc.stderr
    out = dest / "vgg16_keras.safetensors"
    assert f"wrote {out}" in proc.stdout and "depth=16" in proc.stdout
    w = load_vgg(out)
    assert (w.depth, w.meta["source_format"], w.meta["preprocess"]) == (16, "keras_h5", "caffe")
    x = smooth_images(1, 33, 35, seed=3)
    taps = ["relu2_2", "relu4_3"]
    ours = VGG16().apply(w.variables, jnp.asarray(x), taps=taps)
    with torch.no_grad():
        ref = net(tr.preprocess(x, "caffe"), taps)
    for t in taps:
        r = ref[t].permute(0, 2, 3, 1).numpy()
        assert np.linalg.norm(np.asarray(ours[t]) - r) / np.linalg.norm(r) < 1e-4
