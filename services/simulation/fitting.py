"""FitDistribution: a dataset (a file's column, or inline values) fitted off the event loop.

Why the simulation service: fitting is the engine's work (its families, its sampler for the
bootstrap, the formulas its models then use), and this service already loads the engine and
reads the caller's files with the caller's own credentials, so another tenant's file is
NOT_FOUND from the files service itself. At most :data:`CONCURRENT_FITS` fits run at once per
replica, each in a thread with bounded work (``fitting``'s limits on values and bootstrap);
a file is read at most ``MAX_DATASET_BYTES`` far.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.simulation.domain import Files
from services.simulation.loading import load_engine

if TYPE_CHECKING:
    from services.engine.fitting import Report

__all__ = ["CONCURRENT_FITS", "FitRequest", "Fitting"]

CONCURRENT_FITS = 2


@dataclass(frozen=True)
class FitRequest:
    """What to fit: a file's column (``file_id``) or ``values``; and how."""

    file_id: str = ""
    values: Sequence[float] = ()
    column_name: str = ""
    column_index: int = 0
    sheet: str = ""
    kind: str = "auto"
    replicates: int | None = None  # None: the library's default
    seed: int = 0
    credentials: tuple[tuple[str, str], ...] = ()


class Fitting:
    """Fits datasets for the servicer; ``files`` reads a tenant's files (None: inline only)."""

    def __init__(self, files: Files | None) -> None:
        self.files = files
        self._slots = asyncio.Semaphore(CONCURRENT_FITS)

    async def fit(self, request: FitRequest) -> tuple[str, Report]:
        """(the column's name, the report); InvalidArgument names the field at fault."""
        if bool(request.file_id) == bool(request.values):
            raise InvalidArgument("file_id", "give exactly one of file_id and values")
        if request.values and (request.column_name or request.column_index or request.sheet):
            raise InvalidArgument("values", "inline values have no columns or sheets")
        data = b""
        if request.file_id:
            if self.files is None:
                raise FailedPrecondition("the files service is not configured")
            from services.engine.fitting.dataset import MAX_DATASET_BYTES

            data = await self.files.download(
                request.file_id, request.credentials, max_bytes=MAX_DATASET_BYTES
            )
        async with self._slots:
            return await asyncio.to_thread(_fit, request, data)


def _fit(request: FitRequest, data: bytes) -> tuple[str, Report]:
    load_engine()
    from services.engine import fitting
    from services.engine.fitting import dataset

    field = "values"
    values: Sequence[float] | np.ndarray = request.values
    name = ""
    if request.file_id:
        try:
            column = dataset.read_column(
                data, request.column_name, request.column_index, request.sheet
            )
        except dataset.DatasetError as exc:
            raise InvalidArgument(exc.field, exc.reason) from None
        field = "column_name" if request.column_name else "column_index"
        values, name = column.values, column.name
    replicates = fitting.DEFAULT_REPLICATES if request.replicates is None else request.replicates
    try:
        return name, fitting.fit(values, fitting.Kind(request.kind), replicates, request.seed)
    except fitting.FitError as exc:
        raise InvalidArgument(field, str(exc)) from None
