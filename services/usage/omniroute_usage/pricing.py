"""Model prices and the cost of one event.

Prices are USD per million tokens. The shipped table (``omniroute_core/catalog/pricing.json``, its source and
date inside, shared with cost-optimized routing) is merged with operator overrides stored in ``usage_pricing``;
an override wins. Costs use ``Decimal`` throughout
so that sums in PostgreSQL (``numeric``) never drift.

Token accounting follows the hub (``omniroute_translator.codecs.hub``): ``input_tokens`` INCLUDES cached and
cache-creation tokens (as OpenAI's ``prompt_tokens`` does) and ``output_tokens`` INCLUDES reasoning tokens (as
``completion_tokens`` does). So each token is billed once, at exactly one rate:

    cost = (input - cached - creation) * input_rate + cached * cached_rate + creation * creation_rate
         + (output - reasoning) * output_rate + reasoning * reasoning_rate

A missing cached or creation rate falls back to the input rate, a missing reasoning rate to the output rate.
Counts that contradict each other (more cached than input tokens) are clamped, never billed negative.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from omniroute_core.catalog import price_document

__all__ = ["MILLION", "Price", "PriceBook", "event_cost", "load_shipped", "parse_price"]

MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)
# cost_usd is numeric(20, 10): ten decimals are far below a cent even for a single token at the cheapest rate
_QUANTUM = Decimal("0.0000000001")
# API names of the rate fields, in the order the table lists them
RATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("input", "input"),
    ("output", "output"),
    ("cached_input", "cachedInput"),
    ("cache_creation", "cacheCreation"),
    ("reasoning", "reasoning"),
)


@dataclass(frozen=True, slots=True)
class Price:
    """Rates of one model in USD per million tokens; ``None`` means "bill at the fallback rate"."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_creation: Decimal | None = None
    reasoning: Decimal | None = None

    def to_api(self) -> dict[str, float | None]:
        """The camelCase JSON shape (``input``, ``output``, ``cachedInput``, ``cacheCreation``, ``reasoning``)."""
        out: dict[str, float | None] = {}
        for attr, name in RATE_FIELDS:
            value: Decimal | None = getattr(self, attr)
            out[name] = None if value is None else float(value)
        return out


def event_cost(
    price: Price | None,
    *,
    input_tokens: int,
    output_tokens: int,
    cached_input_tokens: int = 0,
    cache_creation_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Decimal:
    """The USD cost of one event's usage at ``price`` (zero for an unpriced model), rounded to 10 decimals."""
    if price is None:
        return _ZERO
    cached = max(0, min(cached_input_tokens, input_tokens))
    creation = max(0, min(cache_creation_tokens, input_tokens - cached))
    regular_in = max(0, input_tokens - cached - creation)
    reasoning = max(0, min(reasoning_tokens, output_tokens)) if output_tokens > 0 else max(0, reasoning_tokens)
    regular_out = max(0, output_tokens - reasoning)
    micro = (
        regular_in * price.input
        + cached * _or(price.cached_input, price.input)
        + creation * _or(price.cache_creation, price.input)
        + regular_out * price.output
        + reasoning * _or(price.reasoning, price.output)
    )
    return (micro / MILLION).quantize(_QUANTUM)


def _or(value: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if value is None else value


def _rate(doc: Mapping[str, Any], name: str, *, required: bool) -> Decimal | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise ValueError(f"{name}: is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: must be a number")
    rate = Decimal(str(value))
    if not rate.is_finite() or rate < 0 or rate > 1_000_000:
        raise ValueError(f"{name}: must be between 0 and 1000000 (USD per million tokens)")
    return rate


def parse_price(doc: Mapping[str, Any]) -> Price:
    """A :class:`Price` from the API/file shape. Raises ``ValueError`` naming the bad field (``input`` and
    ``output`` are required; rates are non-negative numbers)."""
    rates = {attr: _rate(doc, name, required=attr in ("input", "output")) for attr, name in RATE_FIELDS}
    input_rate, output_rate = rates.pop("input"), rates.pop("output")
    assert input_rate is not None and output_rate is not None
    return Price(input_rate, output_rate, **rates)


def load_shipped() -> dict[tuple[str, str], Price]:
    """The shipped table, keyed by ``(provider, model)`` lower-cased. Raises on a malformed file (a packaging
    bug, caught by the tests)."""
    doc = price_document()
    table: dict[tuple[str, str], Price] = {}
    for provider, models in doc["providers"].items():
        for model, rates in models.items():
            table[(provider.lower(), model.lower())] = parse_price(rates)
    return table


class PriceBook:
    """Immutable merge of shipped prices and overrides, with lookup by provider and model.

    Lookup order, for the model and then each shorter ``-``-separated prefix of it (so dated snapshots such as
    ``gpt-4o-2024-08-06`` or ``claude-sonnet-4-5-20250929`` find their family): an override for the provider,
    an override for any provider (stored with provider ``""``), the shipped price for the provider, the shipped
    price of the same model under another provider. A ``provider/`` prefix in the model is tried with and without.
    """

    def __init__(self, shipped: Mapping[tuple[str, str], Price], overrides: Mapping[tuple[str, str], Price]) -> None:
        self._shipped = dict(shipped)
        self._overrides = dict(overrides)
        self._by_model: dict[str, Price] = {}
        for (_, model), price in sorted(self._shipped.items()):
            self._by_model.setdefault(model, price)
        # memo of resolved lookups; events repeat a handful of models, so this stays small
        self._memo: dict[tuple[str, str], Price | None] = {}

    def lookup(self, provider: str, model: str) -> Price | None:
        """The price for ``model`` served by ``provider``, or ``None`` when nothing matches."""
        key = (provider.lower(), model.lower())
        if key not in self._memo:
            self._memo[key] = self._resolve(*key)
        return self._memo[key]

    def cost(self, provider: str, model: str, **tokens: int) -> Decimal:
        """``event_cost`` at the price :meth:`lookup` finds (zero when unpriced)."""
        return event_cost(self.lookup(provider, model), **tokens)

    def _resolve(self, provider: str, model: str) -> Price | None:
        names = [model]
        if "/" in model:
            names.append(model.split("/", 1)[1])
        for name in names:
            for candidate in _prefixes(name):
                found = (
                    self._overrides.get((provider, candidate))
                    or self._overrides.get(("", candidate))
                    or self._shipped.get((provider, candidate))
                    or self._by_model.get(candidate)
                )
                if found is not None:
                    return found
        return None

    def table(self) -> list[dict[str, Any]]:
        """Every priced model as ``{"provider", "model", "source": "default"|"override", rates...}``, sorted."""
        merged: dict[tuple[str, str], tuple[Price, str]] = {k: (p, "default") for k, p in self._shipped.items()}
        merged.update({k: (p, "override") for k, p in self._overrides.items()})
        return [
            {"provider": provider, "model": model, "source": source, **price.to_api()}
            for (provider, model), (price, source) in sorted(merged.items())
        ]


def _prefixes(model: str) -> Iterable[str]:
    yield model
    while "-" in model:
        model = model.rsplit("-", 1)[0]
        yield model
