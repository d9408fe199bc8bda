"""The per-run cost log: seconds per stage and device, priced from a configurable table.

The price table is JSON: ``{"currency": "USD", "per_second": {"cpu": 0.00005, "cuda": 0.0011}}``.
Its path comes from ``BEATFRAME_PRICES`` (via :class:`beatframe.infra.settings.Settings`); without it
the built-in table below applies (a 2-core cloud VM and an on-demand H100, rounded).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from beatframe.infra.errors import BadInputError

class CostLine(BaseModel):
    """One stage's seconds on one device, and what they cost."""

    model_config = ConfigDict(extra="forbid")
    stage: str
    seconds: float
    device: str
    amount: float


class Cost(BaseModel):
    """A run's cost: the manifest's ``cost`` block (``beatframe.manifest/1``)."""

    model_config = ConfigDict(extra="forbid")
    currency: str = "USD"
    total: float
    lines: list[CostLine]


DEFAULT_PRICES = {"currency": "USD", "per_second": {"cpu": 0.00005, "cuda": 0.0011, "mps": 0.0002}}


@dataclass(frozen=True)
class PriceTable:
    currency: str
    per_second: dict[str, float]

    @classmethod
    def load(cls, path: Path | None) -> "PriceTable":
        data = DEFAULT_PRICES
        if path is not None:
            try:
                data = json.loads(Path(path).read_text())
                prices = {str(k): float(v) for k, v in data["per_second"].items()}
                return cls(currency=str(data.get("currency", "USD")), per_second=prices)
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                raise BadInputError(f"price table {path} is unreadable: {exc}") from None
        return cls(currency=data["currency"], per_second=dict(data["per_second"]))

    def price(self, device: str, seconds: float) -> float:
        rate = self.per_second.get(device.split(":")[0])
        if rate is None:
            raise ValueError(f"the price table has no rate for device {device!r}")
        return rate * seconds


@dataclass
class CostLog:
    """Collects one cost line per stage of a run."""

    prices: PriceTable
    lines: list[CostLine] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str, *, device: str = "cpu") -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0, device=device)

    def add(self, name: str, seconds: float, *, device: str = "cpu") -> None:
        amount = self.prices.price(device, seconds)
        self.lines.append(CostLine(stage=name, seconds=round(seconds, 3), device=device,
                                   amount=round(amount, 8)))

    def summary(self) -> Cost:
        total = sum(line.amount for line in self.lines)
        return Cost(currency=self.prices.currency, total=round(total, 8), lines=list(self.lines))

    def table(self) -> list[dict]:
        """Rows for a Prefect table artifact, with a total row."""
        rows = [line.model_dump() for line in self.lines]
        summary = self.summary()
        rows.append({"stage": "total", "seconds": round(sum(r["seconds"] for r in rows), 3),
                     "device": "", "amount": summary.total})
        return rows
