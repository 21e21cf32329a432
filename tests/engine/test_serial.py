"""Stored models: the versioned IR format round-trips every model; old rows still load."""

from __future__ import annotations

import json
import os
import pickle
import zlib

import numpy as np
import pytest

from services.engine import serial, xlerror
from services.engine.convergence import criterion
from services.engine.ir import Apply, Const, Model, Output, Report, Sample, Table, statistic
from services.engine.numpy_backend import compile_numpy
from tests.engine.ir_models import HAND_MODELS, WORKBOOKS, model


def _same_values(a: Model, b: Model) -> None:
    for want, got in zip(
        compile_numpy(a, seed=3).evaluate(5, 300),
        compile_numpy(b, seed=3).evaluate(5, 300),
        strict=True,
    ):
        assert want.keys() == got.keys()
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


@pytest.mark.parametrize("key", [*HAND_MODELS, *WORKBOOKS])
def test_every_test_model_round_trips(key: str, tmp_path) -> None:
    m = model(key, tmp_path)
    stored = serial.dump_model(m)
    back = serial.load_model(stored)
    assert serial.dump_model(back) == stored  # (== on nodes recurses: the long model is deep)
    _same_values(m, back)


def test_shared_nodes_stay_shared_and_odd_numbers_survive() -> None:
    x = Sample(0, "normal", (Const(0.0), Const(1.0)), "x", "A1", (None, 2.5), seed=2**64 - 1)
    shared = Apply("mul", (x, Const(-0.0)))
    t = Table((1.0, float("nan"), float("inf"), -float("inf"), 5e-324), 5, 1)
    m = Model(
        (x,),
        (
            Output("a", "B1", Apply("add", (shared, Apply("index", (t, x))))),
            Output("b", "B2", shared),
        ),
        warnings=("Sheet!A1: RiskStatic ignored",),
    )
    back = serial.load_model(serial.dump_model(m))
    assert back.outputs[0].node.args[0] is back.outputs[1].node  # type: ignore[union-attr]
    assert back.outputs[1].node.args[0] is back.inputs[0]  # type: ignore[union-attr]
    table = back.outputs[0].node.args[1].args[0]  # type: ignore[union-attr]
    assert np.array_equal(table.values, t.values, equal_nan=True)
    assert back.inputs[0].seed == 2**64 - 1 and back.warnings == m.warnings


def test_a_100000_deep_chain_round_trips() -> None:
    x = Sample(0, "uniform", (Const(0.0), Const(1.0)), "x", "A1")
    node = x
    for _ in range(100_000):
        node = Apply("add", (node, Const(1.0)))
    back = serial.load_model(serial.dump_model(Model((x,), (Output("y", "B1", node),))))
    depth, node = 0, back.outputs[0].node
    while isinstance(node, Apply):
        depth, node = depth + 1, node.args[0]
    assert depth == 100_000 and node is back.inputs[0]


def test_a_model_stored_by_the_previous_format_still_loads(tmp_path) -> None:
    """Format 0 was the pickle the simulation service stored before format 1."""
    m = model("functions", tmp_path)
    back = serial.load_model(pickle.dumps(m))
    assert back == m
    _same_values(m, back)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_a_crafted_pickle_cannot_run_code() -> None:
    with pytest.raises(ValueError, match=r"may not contain posix\.system"):
        serial.load_model(pickle.dumps(_Payload()))
    with pytest.raises(ValueError, match="not a model"):
        serial.load_model(pickle.dumps((1, 2)))


def test_newer_and_corrupt_formats_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="format 4; this version reads formats 0 to 3"):
        serial.load_model(b"ALEA-IR/4\n" + zlib.compress(b"{}"))
    with pytest.raises(ValueError, match="corrupt"):
        serial.load_model(b"ALEA-IR/1\n" + zlib.compress(b'{"nodes": [["q"]]}'))
    with pytest.raises(ValueError, match="corrupt"):
        serial.load_model(b"ALEA-IR/1\nnot zlib")
    with pytest.raises(ValueError, match="not a stored model"):
        serial.load_model(b"hello")


def test_format_1_still_loads() -> None:
    """Format 1 wrote every NaN as "nan" and had no reports; it reads as a #NUM! constant."""
    doc = {
        "nodes": [["c", "nan"], ["c", 2.0], ["a", "add", [0, 1], "B1"]],
        "tables": [],
        "inputs": [],
        "outputs": [["y", "B1", 2]],
        "correlations": [],
        "warnings": [],
    }
    body = zlib.compress(json.dumps(doc).encode())
    back = serial.load_model(b"ALEA-IR/1\n" + body)
    (const, two) = back.outputs[0].node.args  # type: ignore[union-attr]
    assert xlerror.name(const.value) == "#NUM!" and two == Const(2.0) and back.reports == ()


def test_format_2_still_loads_and_convergence_tests_round_trip() -> None:
    """Format 2 had no convergence test in its outputs; format 3 keeps RiskConvergence's."""
    x = Sample(0, "normal", (Const(0.0), Const(1.0)), "x", "A1")
    test = criterion(0.5, relative=False, confidence=0.9, stddev=True, percentiles=(0.95, 0.05))
    m = Model((x,), (Output("y", "B1", x, test), Output("z", "B2", x)))
    back = serial.load_model(serial.dump_model(m))
    assert back == m and back.outputs[0].convergence == test
    _, _, body = serial.dump_model(m).partition(b"\n")
    doc = json.loads(zlib.decompress(body))
    doc["outputs"] = [row[:3] for row in doc["outputs"]]
    old = serial.load_model(b"ALEA-IR/2\n" + zlib.compress(json.dumps(doc).encode()))
    assert [o.convergence for o in old.outputs] == [None, None]
    assert [o.node for o in old.outputs] == [x, x]
    doc["outputs"][0].append({"tolerance": -1})
    with pytest.raises(ValueError, match="corrupt stored model"):
        serial.load_model(b"ALEA-IR/3\n" + zlib.compress(json.dumps(doc).encode()))


def test_error_constants_keep_their_type_and_reports_round_trip() -> None:
    x = Sample(0, "normal", (Const(0.0), Const(1.0)), "x", "A1")
    node = Apply("iferror", (Apply("div", (x, Const(0.0))), Const(xlerror.NA)))
    report = Apply("div", (statistic("percentile", "y", 0.95), Const(xlerror.DIV0)))
    m = Model((x,), (Output("y", "B1", node),), reports=(Report("P95", "C1", report),))
    back = serial.load_model(serial.dump_model(m))
    assert xlerror.name(back.outputs[0].node.args[1].value) == "#N/A"  # type: ignore[union-attr]
    (r,) = back.reports
    assert (r.name, r.address) == ("P95", "C1")
    assert r.node.args[0] == statistic("percentile", "y", 0.95)  # type: ignore[union-attr]
    assert xlerror.name(r.node.args[1].value) == "#DIV/0!"  # type: ignore[union-attr]
