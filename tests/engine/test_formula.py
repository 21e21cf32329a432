"""The formula parser: Excel precedence, references, names, arrays, and refusals."""

from __future__ import annotations

import pytest

from services.engine.errors import FormulaError
from services.engine.formula import (
    Array,
    Binary,
    Bool,
    Call,
    ErrorLiteral,
    Missing,
    Name,
    Number,
    Ref,
    Text,
    Unary,
    parse,
    parse_reference,
)
from services.engine.sheet import MAX_COL, MAX_ROW, address, column_letters, column_number

N = Number


def test_negation_binds_tighter_than_power() -> None:
    assert parse("=-2^2") == Binary("pow", Unary("neg", N(2)), N(2))


def test_power_is_left_associative() -> None:
    assert parse("=2^3^2") == Binary("pow", Binary("pow", N(2), N(3)), N(2))


def test_percent_binds_tighter_than_power_and_looser_than_negation() -> None:
    assert parse("=-2%^2") == Binary("pow", Unary("percent", Unary("neg", N(2))), N(2))
    assert parse("=2^3%") == Binary("pow", N(2), Unary("percent", N(3)))


def test_arithmetic_then_concat_then_comparison() -> None:
    expr = parse('=1+2*3&"x"<>"y"')
    assert expr == Binary(
        "ne", Binary("concat", Binary("add", N(1), Binary("mul", N(2), N(3))), Text("x")), Text("y")
    )


def test_subtraction_is_left_associative_and_parentheses_group() -> None:
    assert parse("=1-2-3") == Binary("sub", Binary("sub", N(1), N(2)), N(3))
    assert parse("=1-(2-3)") == Binary("sub", N(1), Binary("sub", N(2), N(3)))


def test_unary_plus_is_dropped_and_double_negation_kept() -> None:
    assert parse("=+-+1") == Unary("neg", N(1))
    assert parse("=--A1") == Unary("neg", Unary("neg", Ref(None, 1, 1, 1, 1)))


def test_literals() -> None:
    assert parse('="a""b"') == Text('a"b')
    assert parse("=TRUE") == Bool(True)
    assert parse("=#N/A") == ErrorLiteral("#N/A")
    assert parse("=1E+3") == N(1000.0)
    assert parse("1.5") == N(1.5)


def test_calls_with_missing_arguments_and_prefixes() -> None:
    assert parse("=RiskTruncate(,10)") == Call("RiskTruncate", (Missing(), N(10)))
    assert parse("=IF(1,,2)") == Call("IF", (N(1), Missing(), N(2)))
    assert parse("=RiskOutput()") == Call("RiskOutput", ())
    assert parse("=_xlfn.STDEV.S(A1)") == Call("STDEV.S", (Ref(None, 1, 1, 1, 1),))
    assert parse("=sum( 1 , 2 )") == Call("sum", (N(1), N(2)))


def test_array_constants() -> None:
    assert parse("={1,2;3,-4}") == Array(((N(1), N(2)), (N(3), N(-4))))
    with pytest.raises(FormulaError, match="rows differ"):
        parse("={1,2;3}")


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("A1", Ref(None, 1, 1, 1, 1)),
        ("$B$2:C3", Ref(None, 2, 2, 3, 3)),
        ("C3:B2", Ref(None, 2, 2, 3, 3)),
        ("'My Sheet'!A1:B3", Ref("My Sheet", 1, 1, 3, 2)),
        ("'It''s'!A1", Ref("It's", 1, 1, 1, 1)),
        ("Sheet2!$A$1", Ref("Sheet2", 1, 1, 1, 1)),
        ("A:B", Ref(None, 1, 1, MAX_ROW, 2)),
        ("2:3", Ref(None, 2, 1, 3, MAX_COL)),
        ("XFD1048576", Ref(None, MAX_ROW, MAX_COL, MAX_ROW, MAX_COL)),
        ("Rate", Name("Rate")),
        ("Sheet1!Rate", Name("Rate", "Sheet1")),
        ("XFE1", Name("XFE1")),
        ("A1048577", Name("A1048577")),
        ("CORR.0", Name("CORR.0")),
    ],
)
def test_references_and_names(text: str, ref: Ref | Name) -> None:
    assert parse_reference(text) == ref


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("=SUM(A1:B2 C1:C3)", "the intersection operator (a space between references"),
        ("=Rate B1", "the intersection operator"),
        ("=(A1:B3) (B1:B3)", "the intersection operator"),
        ("=(A1,B1)", "the union operator"),
        ("=[1]Sheet1!A1", "unsupported reference"),
        ("=Sheet1:Sheet3!A1", "unsupported reference"),
        ("=A1:Sheet2!B2", "unsupported reference"),
        ("=1+", "unexpected end"),
        ("=SUM(1", "unexpected end"),
        ("=1 2", "unexpected '2'"),
        ("=", "empty formula"),
        ("=" + "(" * 200 + "1" + ")" * 200, "formula nests deeper than 100 levels"),
        ("=" + "1+" * 33_000 + "1", "longer than 65536"),
        ("={A1}", "only literals"),
    ],
)
def test_refusals_name_the_cell(formula: str, reason: str) -> None:
    with pytest.raises(FormulaError) as err:
        parse(formula, "Model!C7")
    assert reason in str(err.value)
    assert err.value.location == "Model!C7"


def test_long_formulas_are_shortened_in_messages() -> None:
    with pytest.raises(FormulaError) as err:
        parse("=" + "+".join(["A1"] * 100) + "+", "S!A1")
    assert len(str(err.value)) < 200


def test_addresses() -> None:
    assert column_number("XFD") == MAX_COL
    assert column_letters(28) == "AB"
    assert address("My Sheet", 3, 2) == "'My Sheet'!B3"
    assert address("Sheet1", 1, 1) == "Sheet1!A1"
