"""The page-kernel contract (issue 11 point 9): written once in weightwidget/_protocol.py;
the TypeScript types are generated from it (and must be current), the widget's traits
and handlers are exactly the contract's, and its examples pass both sides' checks."""

from __future__ import annotations

import subprocess
import sys

import anywidget
import pytest

from weightwidget import _protocol as protocol
from weightwidget.widget import WeightWidget

from .conftest import ROOT


def test_generated_typescript_is_current():
    gen = ROOT / "js" / "protocol.gen.ts"
    assert gen.read_text() == protocol.typescript(), (
        "js/protocol.gen.ts is stale: run python scripts/gen_protocol.py"
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protocol.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_types_ts_takes_the_contract_from_the_generated_file():
    types = (ROOT / "js" / "types.ts").read_text()
    assert 'from "./protocol.gen"' in types
    for name in ("interface Traits", "type Request =", "interface RowsReply"):
        assert name not in types, f"{name} is written by hand in types.ts"


def test_the_widget_syncs_exactly_the_contract_traits(table):
    w = WeightWidget(table)
    base = set(anywidget.AnyWidget.class_trait_names(sync=True))
    ours = {k for k in w.keys if k not in base and not k.startswith("_")}
    assert ours == set(protocol.TRAITS)
    ctx = w._ctx()
    for name in protocol.TRAITS:  # the values the kernel sends have their documented shape
        protocol.check_trait(name, getattr(w, name), ctx)
    assert set(w._handlers) == set(protocol.REQUESTS)
    for name in protocol.KERNEL_TRAITS:
        assert w.traits()[name].read_only, f"{name} is kernel-owned but writable from Python"


def test_examples_pass_the_python_checks():
    ex = protocol.EXAMPLES
    ctx = ex["context"]
    for name, value in ex["traits"].items():
        assert protocol.check_trait(name, value, ctx) == value
    assert set(ex["traits"]) == set(protocol.TRAITS)
    assert {r["kind"] for r in ex["requests"]} == set(protocol.REQUESTS)
    for req in ex["requests"]:
        rid, kind, _ = protocol.check_request(req, ctx)
        assert (rid, kind) == (req["id"], req["kind"])
    for kind, reply in ex["replies"].items():
        buffers = [bytes(b) for b in reply["buffers"]]
        protocol.check_reply("ping" if kind == "error" else kind, reply["content"], buffers)


def test_every_example_request_gets_a_reply_of_its_documented_shape(table):
    w = WeightWidget(table)
    sent = []
    w.send = lambda content, buffers=None: sent.append((content, buffers or []))
    w.selected = [3, 17]
    table.set_weights([1], 2.0)
    for req in protocol.EXAMPLES["requests"]:
        w._on_msg(w, req, [])
        content, buffers = sent[-1]
        assert content["id"] == req["id"]
        protocol.check_reply(req["kind"], content, buffers)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({"id": 1, "kind": "rows", "start": 0, "count": 1, "extra": 1}, "unknown field 'extra'"),
        ({"id": 1, "kind": "ping", "x": 1}, "unknown field 'x'"),
        ({"id": -1, "kind": "ping"}, "id must be an integer"),
        ({"id": 2**60, "kind": "ping"}, "id must be an integer"),
        ({"id": True, "kind": "ping"}, "id must be an integer"),
        ({"id": 1, "kind": "bulk", "action": "set", "target": "x"}, "target must be one of"),
        ({"id": 1, "kind": "select_range", "start": 0, "stop": 1, "add": 1}, "add must be true"),
    ],
)
def test_requests_outside_the_contract_are_refused(content, match):
    ctx = protocol.EXAMPLES["context"]
    with pytest.raises(protocol.ProtocolError, match=match):
        protocol.check_request(content, ctx)


def test_short_quotes_a_little():
    assert protocol.short("x" * 1000).endswith("... (1,002 characters)")
    assert len(protocol.short("x" * 10**6)) < 250
    assert protocol.short(list(range(10**5))).endswith("(100,000 items)")
    assert protocol.short(10**500).endswith("(501 digits)")
    assert protocol.clip("y" * 5000) == "y" * 599 + "…"
