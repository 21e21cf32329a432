"""ModelSpec → IR: the same model a workbook gives, errors named by spec field path."""

from __future__ import annotations

import copy
import io
from typing import Any

import numpy as np
import pytest
from alea.simulation.v1 import model_spec_pb2

from services.engine.errors import (
    CircularReference,
    CorrelationError,
    FormulaError,
    ModelError,
    ParameterError,
)
from services.engine.ir import Const, Table
from services.engine.spec import model_from_spec
from services.engine.workbook import load_workbook
from tests.engine import models


def _small() -> dict[str, Any]:
    """The shared small model (tests.engine.models.small) as a spec."""
    return {
        "inputs": [
            {
                "name": "Revenue",
                "distribution": {"kind": "DISTRIBUTION_KIND_NORMAL", "parameters": [100, 10]},
            },
            {
                "name": "Cost",
                "distribution": {"kind": "DISTRIBUTION_KIND_TRIANG", "parameters": [20, 30, 50]},
            },
            {
                "name": "Tax",
                "distribution": {"kind": "DISTRIBUTION_KIND_UNIFORM", "parameters": [0.1, 0.2]},
            },
        ],
        "expressions": [{"name": "profit", "formula": "(Revenue-Cost)*(1-Tax)"}],
        "outputs": [{"name": "Profit", "expression": "profit"}],
    }


def _rich() -> dict[str, Any]:
    spec = _small()
    spec["inputs"] += [
        {
            "name": "units",
            "distribution": {
                "kind": "DISTRIBUTION_KIND_DISCRETE",
                "values": [1, 2, 3],
                "probabilities": [0.2, 0.5, 0.3],
            },
            "seed": "18446744073709551557",
            "truncateMin": 1.5,
        },
        {
            "name": "share",
            "distribution": {
                "kind": "DISTRIBUTION_KIND_CUMUL",
                "parameters": [0, 10],
                "values": [2, 5],
                "probabilities": [0.2, 0.6],
            },
            "truncateMax": 8,
        },
    ]
    spec["expressions"].append({"name": "total", "formula": "profit*units+share"})
    spec["outputs"].append({"name": "Total", "expression": "total"})
    spec["correlations"] = [
        {"name": "revenue-cost", "inputs": ["Revenue", "Cost"], "matrix": [1, 0.5, 0.5, 1]}
    ]
    return spec


def test_the_spec_and_the_workbook_give_the_same_simulation() -> None:
    from services.engine.numpy_backend import compile_numpy

    buf = io.BytesIO()
    models.small().save(buf)
    from_book = load_workbook(buf.getvalue())
    from_spec = model_from_spec(_small())
    assert [(s.name, s.distribution, s.params) for s in from_spec.inputs] == [
        (s.name, s.distribution, s.params) for s in from_book.inputs
    ]
    a = compile_numpy(from_book, seed=11).evaluate(0, 1000)
    b = compile_numpy(from_spec, seed=11).evaluate(0, 1000)
    np.testing.assert_array_equal(a[0]["Profit"], b[0]["Profit"])


def test_a_message_and_a_dict_give_the_same_model() -> None:
    from google.protobuf import json_format

    message = json_format.ParseDict(_rich(), model_spec_pb2.ModelSpec())
    assert model_from_spec(message) == model_from_spec(_rich())


def test_inputs_keep_tables_truncation_seed_and_correlation() -> None:
    model = model_from_spec(_rich())
    units, share = model.inputs[3], model.inputs[4]
    assert units.params == (Table((1.0, 2.0, 3.0), 1, 3), Table((0.2, 0.5, 0.3), 1, 3))
    assert (units.seed, units.truncate) == (18446744073709551557, (1.5, None))
    assert share.params[:2] == (Const(0.0), Const(10.0)) and share.truncate == (None, 8.0)
    (corr,) = model.correlations
    assert (corr.name, corr.streams, corr.matrix) == ("revenue-cost", (0, 1), ((1, 0.5), (0.5, 1)))
    assert [o.name for o in model.outputs] == ["Profit", "Total"]
    assert [s.address for s in model.inputs][:2] == [
        "inputs[0].distribution",
        "inputs[1].distribution",
    ]


def _edit(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    *parents, last = path.split(".")
    target: Any = spec
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "kind", "location", "reason"),
    [
        (
            "expressions.0.formula",
            "Revenue +* 2",
            FormulaError,
            "expressions[0].formula",
            "unexpected",
        ),
        (
            "expressions.0.formula",
            "CUBEVALUE(Revenue)",
            FormulaError,
            "expressions[0].formula",
            "unsupported",
        ),
        ("expressions.0.formula", "Revenue & Cost", FormulaError, "expressions[0].formula", "&"),
        (
            "expressions.0.formula",
            "profit+1",
            CircularReference,
            "expressions[0].formula",
            "circular",
        ),
        (
            "inputs.0.distribution.parameters",
            [0, -1],
            ParameterError,
            "inputs[0].distribution",
            "sd must be > 0",
        ),
        (
            "inputs.1.distribution.parameters",
            [3, 2],
            ParameterError,
            "inputs[1].distribution.parameters",
            "takes 3",
        ),
        (
            "inputs.3.distribution.probabilities",
            [0.5],
            ParameterError,
            "inputs[3].distribution",
            "3 entries",
        ),
        (
            "inputs.3.distribution.values",
            [],
            ParameterError,
            "inputs[3].distribution.values",
            "empty",
        ),
        (
            "inputs.0.distribution.kind",
            "DISTRIBUTION_KIND_UNSPECIFIED",
            ModelError,
            "inputs[0].distribution.kind",
            "not supported",
        ),
        ("outputs.0.expression", "nope", FormulaError, "outputs[0].expression", "unknown name"),
        ("outputs.0.expression", "profit+1", ModelError, "outputs[0].expression", "the name of"),
        ("outputs.0.name", " ", ModelError, "outputs[0].name", "needs a name"),
        ("inputs.0.name", "A1", ModelError, "inputs[0].name", "cell reference"),
        ("inputs.0.name", "TRUE", ModelError, "inputs[0].name", "reserved"),
        ("inputs.0.name", "a b", ModelError, "inputs[0].name", "not a name"),
        ("expressions.0.name", "cost", ModelError, "expressions[0].name", "used twice"),
        (
            "correlations.0.matrix",
            [1, 2, 2, 1],
            CorrelationError,
            "correlations[0].matrix",
            "[-1, 1]",
        ),
        (
            "correlations.0.matrix",
            [1, 0.5, 0.4, 1],
            CorrelationError,
            "correlations[0].matrix",
            "'revenue-cost': matrix is not symmetric",
        ),
        (
            "correlations.0.matrix",
            [1, 0.5, 0.5],
            ModelError,
            "correlations[0].matrix",
            "expected 4",
        ),
        (
            "correlations.0.inputs",
            ["Revenue", "ghost"],
            ModelError,
            "correlations[0].inputs[1]",
            "no input",
        ),
    ],
)
def test_errors_name_the_spec_field(
    path: str, value: Any, kind: type[ModelError], location: str, reason: str
) -> None:
    with pytest.raises(kind) as err:
        model_from_spec(_edit(_rich(), path, value))
    assert err.value.location == location
    assert reason in err.value.reason
    assert "CORR." not in str(err.value)


def test_an_input_in_two_correlations_is_refused() -> None:
    spec = _rich()
    spec["correlations"].append(
        {"name": "again", "inputs": ["Cost", "Tax"], "matrix": [1, 0, 0, 1]}
    )
    with pytest.raises(ModelError) as err:
        model_from_spec(spec)
    assert err.value.location == "correlations[1].inputs[0]"


def test_a_dict_that_is_not_a_spec() -> None:
    with pytest.raises(ModelError) as err:
        model_from_spec({"inputs": 3})
    assert err.value.location == "spec"


# --- every distribution of the catalog, and the property fields ----------------------------


def _spec_of(distribution: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "inputs": [{"name": "x", "distribution": distribution, **fields}],
        "outputs": [{"name": "X", "expression": "x"}],
    }


def _distribution_spec(name: str) -> dict[str, Any]:
    """The spec's Distribution for the parameters tests/engine/test_distributions.py uses."""
    from services.engine import catalog
    from tests.engine.test_distributions import TABLE

    dist = catalog.DISTRIBUTIONS[name]
    out: dict[str, Any] = {"kind": _KINDS[name], "parameters": []}
    for pname, value in zip(dist.params, TABLE[name].params, strict=True):
        if isinstance(value, Table):
            field = "values" if pname in ("values", "x") else "probabilities"
            out[field] = list(value.values)
        else:
            out["parameters"].append(value)
    return out


_KINDS = {
    name.removeprefix("DISTRIBUTION_KIND_").lower().replace("_", ""): name
    for name in (v.name for v in model_spec_pb2.DistributionKind.DESCRIPTOR.values)
    if name != "DISTRIBUTION_KIND_UNSPECIFIED"
}


def test_every_catalog_distribution_is_a_kind() -> None:
    from services.engine import catalog

    assert set(_KINDS) == set(catalog.DISTRIBUTIONS)


@pytest.mark.parametrize("name", sorted(_KINDS))
def test_every_kind_builds_the_workbook_input(name: str) -> None:
    from tests.engine.test_distributions import TABLE

    if name not in TABLE:
        pytest.skip("the original families are covered above")
    model = model_from_spec(_spec_of(_distribution_spec(name)))
    (sample,) = model.inputs
    assert sample.distribution == name
    values = [p.values if isinstance(p, Table) else p.value for p in sample.params]  # type: ignore[union-attr]
    want = [p.values if isinstance(p, Table) else p for p in TABLE[name].params]
    assert values == want


def test_property_fields() -> None:
    dist = {"kind": "DISTRIBUTION_KIND_LOGISTIC", "parameters": [2, 0.5]}
    model = model_from_spec(_spec_of(dist, shift=10, truncatePMin=0.1, truncatePMax=0.9))
    (sample,) = model.inputs
    assert sample.truncate is not None and sample.truncate[0] < 2 < sample.truncate[1]
    assert model.outputs[0].node != sample  # x + 10
    locked = model_from_spec(_spec_of(dist, staticValue=3.5, lock=True))
    assert locked.inputs == () and locked.outputs[0].node == Const(3.5)
    locked = model_from_spec(_spec_of(dist, lock=True))
    assert locked.outputs[0].node == Const(2.0)  # the logistic's mean


def test_a_table_the_kind_does_not_take_is_refused() -> None:
    dist = {"kind": "DISTRIBUTION_KIND_HISTOGRM", "parameters": [0, 1], "values": [0.5]}
    with pytest.raises(ParameterError) as err:
        model_from_spec(_spec_of({**dist, "probabilities": [1, 2]}))
    assert err.value.location == "inputs[0].distribution.values"


def test_models_report_every_kind() -> None:
    """The Model message names each input's kind, for every distribution of the catalog."""
    from services.engine import catalog
    from services.simulation.convert import _kind

    assert {d: _kind(d) for d in catalog.DISTRIBUTIONS} == {
        d: _KINDS[d] for d in catalog.DISTRIBUTIONS
    }
    assert _kind("no such") == "DISTRIBUTION_KIND_UNSPECIFIED"
