"""The uniforms an input transforms, by sampling method: one function every back end asks.

An input's uniform for trial ``t`` depends only on (the key's seed, its stream, the sampling
method, ``t``): Monte Carlo draws Philox words (:mod:`.rng`), Latin Hypercube stratifies
them per block (:mod:`.sampling`), Sobol takes point ``t`` of the stream's dimension of a
scrambled Sobol sequence (:mod:`.sobol`). The key's seed is the input's ``RiskSeed`` or the
simulation's. An input that ``draws_from`` another stream (a RiskSimtable simulation's copy
of an input) takes that stream's uniforms, so every simulation sees the same numbers.
``RiskResample`` in order or without replacement takes, whatever the method, the position of
the trial's number in its data (:func:`.resample.positions`).

Monte Carlo uniforms are drawn inside the generated code's loop; the other methods are
computed here and handed to the native and CUDA back ends (:func:`host`).
"""

from __future__ import annotations

import numpy as np

from . import resample, rng, sampling, sobol
from .errors import ModelError
from .ir import Model, Sample

__all__ = ["SAMPLINGS", "check", "draw", "host", "key_seed", "source"]

SAMPLINGS = ("mc", "lhs", "sobol")


def source(model: Model, stream: int) -> Sample:
    """The input whose stream ``stream`` draws from (itself unless it is a copy)."""
    s = model.inputs[stream]
    return s if s.draws_from is None else model.inputs[s.draws_from]


def key_seed(model: Model, stream: int, seed: int) -> int:
    """The seed of the Philox key of ``stream``: its source's RiskSeed, else ``seed``."""
    fixed = source(model, stream).seed
    return seed if fixed is None else fixed


def check(model: Model, method: str) -> None:
    """Refuse a model the sampling method cannot sample (Sobol: more inputs than dimensions)."""
    if method == "sobol" and len(model.inputs) > sobol.MAX_DIMENSIONS:
        raise ModelError(
            f"Sobol sampling samples at most {sobol.MAX_DIMENSIONS:,} inputs; the model has "
            f"{len(model.inputs):,} (RiskSimtable copies included): use Monte Carlo or Latin "
            "Hypercube"
        )


def draw(model: Model, stream: int, seed: int, method: str, first: int, count: int) -> np.ndarray:
    """Uniforms in (0, 1) of trials ``[first, first + count)`` for input ``stream``."""
    src = source(model, stream)
    key = key_seed(model, stream, seed)
    if src.distribution == resample.DISTRIBUTION:
        return resample.positions(src, key, first, count)
    if method == "mc":
        return rng.uniforms(key, src.stream, first, count)
    if method == "lhs":
        return sampling.lhs_uniforms(key, src.stream, first, count)
    if method == "sobol":
        return sobol.uniforms(key, src.stream, first, count)
    raise ValueError(f"sampling must be one of {SAMPLINGS}, got {method!r}")


def host(model: Model, seed: int, method: str, first: int, count: int) -> np.ndarray | None:
    """Every input's uniforms, shape (inputs, count), for a back end that draws Monte Carlo
    uniforms itself; None for Monte Carlo."""
    if method == "mc":
        return None
    u = np.empty((len(model.inputs), count))
    for s in model.inputs:
        u[s.stream] = draw(model, s.stream, seed, method, first, count)
    return u
