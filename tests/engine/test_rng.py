"""Philox streams: Random123 known answers, the documented mapping, golden data, chunking."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from services.engine import rng

DATA = Path(__file__).parents[1] / "data"
M64 = (1 << 64) - 1


def philox4x64_10(ctr: tuple[int, ...], key: tuple[int, int]) -> tuple[int, ...]:
    """Random123 ``philox4x64_R(10, ctr, key)`` in plain Python integers (the reference)."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B97F4A7C15) & M64, (k1 + 0xBB67AE8584CAA73B) & M64
        p0, p1 = 0xD2E7470EE14C6C93 * c0, 0xCA5A826395121157 * c2
        c0, c1, c2, c3 = (p1 >> 64) ^ c1 ^ k0, p1 & M64, (p0 >> 64) ^ c3 ^ k1, p0 & M64
    return c0, c1, c2, c3


def reference_word(seed: int, stream: int, index: int, domain: int = 0) -> int:
    """The mapping documented in rng.py, computed independently of NumPy."""
    return philox4x64_10((index // 4, domain, 0, 0), (seed, stream))[index % 4]


KAT = json.loads((DATA / "philox_kat.json").read_text())["vectors"]
GOLDEN = json.loads((DATA / "philox_golden.json").read_text())["streams"]


@pytest.mark.parametrize("vector", KAT)
def test_known_answers_reference_and_numpy(vector: dict) -> None:
    ctr = tuple(int(w, 16) for w in vector["counter"])
    key = tuple(int(w, 16) for w in vector["key"])
    expected = tuple(int(w, 16) for w in vector["output"])
    assert philox4x64_10(ctr, key) == expected
    # NumPy's Philox increments its counter before each block: start one below.
    start = (sum(c << (64 * i) for i, c in enumerate(ctr)) - 1) % (1 << 256)
    counter = np.array([(start >> (64 * i)) & M64 for i in range(4)], dtype=np.uint64)
    words = np.random.Philox(key=np.array(key, dtype=np.uint64), counter=counter).random_raw(4)
    assert tuple(int(w) for w in words) == expected


@pytest.mark.parametrize(
    "seed,stream,first,count",
    [
        (0, 0, 0, 13),
        (42, 7, 5, 9),
        (M64, 3, (1 << 40) + 1, 6),
        (9, M64, 3, 4),
        (1, 2, 0, 0),
    ],
)
def test_raw_follows_documented_mapping(seed: int, stream: int, first: int, count: int) -> None:
    got = rng.raw(seed, stream, first, count)
    assert got.dtype == np.uint64 and got.shape == (count,)
    assert [int(w) for w in got] == [reference_word(seed, stream, first + i) for i in range(count)]


def test_domain_one_is_a_separate_stream() -> None:
    got = rng.raw(5, 1, 2, 6, domain=1)
    assert [int(w) for w in got] == [reference_word(5, 1, 2 + i, domain=1) for i in range(6)]
    assert not np.array_equal(got, rng.raw(5, 1, 2, 6))


@pytest.mark.parametrize("golden", GOLDEN, ids=lambda g: f"seed{g['seed']}-s{g['stream']}")
def test_golden_streams(golden: dict) -> None:
    seed, stream, first = int(golden["seed"]), golden["stream"], golden["first"]
    n = len(golden["words"])
    words = rng.raw(seed, stream, first, n, domain=golden["domain"])
    assert [f"{int(w):016x}" for w in words] == golden["words"]
    assert [float(u).hex() for u in rng.to_unit(words)] == golden["uniforms"]
    if golden["domain"] == 0:
        assert [float(u).hex() for u in rng.uniforms(seed, stream, first, n)] == golden["uniforms"]


def test_unit_conversion_is_exact_and_open() -> None:
    words = np.array([0, M64, 1 << 12, (1 << 12) - 1, 0x123456789ABCDEF0], dtype=np.uint64)
    expected = [((int(w) >> 12) + 0.5) * 2.0**-52 for w in words]
    unit = rng.to_unit(words.copy())
    assert unit.tolist() == expected
    assert unit[0] == 2.0**-53 and unit[1] == 1.0 - 2.0**-53
    u = rng.uniforms(3, 4, 0, 1 << 16)
    assert u.min() > 0.0 and u.max() < 1.0


def test_chunks_never_depend_on_earlier_chunks() -> None:
    whole = rng.uniforms(11, 2, 0, 10_007)
    cuts = [0, 1, 2, 7, 64, 1000, 4093, 10_007]
    parts = [rng.uniforms(11, 2, a, b - a) for a, b in pairwise(cuts)]
    assert np.array_equal(np.concatenate(parts), whole)
    assert np.array_equal(rng.uniforms(11, 2, 5000, 7), whole[5000:5007])


def test_streams_and_seeds_differ() -> None:
    a = rng.uniforms(1, 0, 0, 64)
    assert not np.array_equal(a, rng.uniforms(1, 1, 0, 64))
    assert not np.array_equal(a, rng.uniforms(2, 0, 0, 64))


@pytest.mark.parametrize("seed,stream", [(-1, 0), (1 << 64, 0), (0, -3)])
def test_out_of_range_keys_are_refused(seed: int, stream: int) -> None:
    with pytest.raises(ValueError, match="in \\[0, 2\\*\\*64\\)"):
        rng.raw(seed, stream, 0, 4)


def test_blocks_with_a_key_per_element_match_the_reference() -> None:
    gen = np.random.default_rng(3)
    c0 = gen.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    k0 = gen.integers(0, 2**64, 40, dtype=np.uint64, endpoint=False)
    c0[0], k0[0] = M64, M64
    words = rng.blocks(c0, 2, k0, M64)
    assert words.shape == (4, 40)
    for i in range(40):
        want = philox4x64_10((int(c0[i]), 2, 0, 0), (int(k0[i]), M64))
        assert tuple(int(w) for w in words[:, i]) == want
