"""Servers on 127.0.0.1 for the remote-shard tests: HTTP with byte ranges, and S3 (moto).

Both serve from this test process (threads); training ranks started as subprocesses read
from them over the loopback interface. Not collected by pytest.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from audio_core.distributed import free_port


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single ``Range: bytes=a-b`` requests (fsspec reads members so).

    ``server.drops``: ``{file name: n}``: the next ``n`` GETs of that file send half the
    requested bytes and then close the connection (a dropped connection mid-shard).
    """

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        start = int(match.group(1)) if match else 0
        end = min(int(match.group(2)) if match and match.group(2) else size - 1, size - 1)
        with path.open("rb") as f:
            f.seek(start)
            body = f.read(max(0, end - start + 1))
        drops = self.server.drops
        dropping = drops.get(path.name, 0) > 0
        if dropping:
            drops[path.name] -= 1
        self.send_response(206 if match else 200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if dropping else body)
        if dropping:
            self.close_connection = True

    def do_HEAD(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()


@contextlib.contextmanager
def http_server(root: Path) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """``(base URL, server)`` serving ``root``; ``server.drops`` as in :class:`RangeHandler`."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()),
                                 partial(RangeHandler, directory=str(root)))
    server.drops = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def s3_server(monkeypatch) -> Iterator[str]:
    """An S3-compatible server (moto) on 127.0.0.1; its endpoint and dummy credentials are
    exported as ``AWS_ENDPOINT_URL`` / ``AWS_ACCESS_KEY_ID`` / ... (children inherit them).
    Yields the endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in (("AWS_ENDPOINT_URL", endpoint), ("AWS_ACCESS_KEY_ID", "testing"),
                       ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    try:
        yield endpoint
    finally:
        server.stop()


def upload(folder: Path, bucket: str, prefix: str) -> None:
    """Every file of ``folder`` to ``s3://bucket/prefix/`` (creating the bucket)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=bucket)
    for file in sorted(folder.iterdir()):
        s3.upload_file(str(file), bucket, f"{prefix}/{file.name}")
