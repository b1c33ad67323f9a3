"""Translation CPU cost per request, per response and per stream event, for every (client, provider) pair.

    uv run python services/translator/bench/translate_bench.py [--iterations 200] [--goldens DIR]

Inputs are the golden cases (``tests/goldens``): a pair's requests are the client format's valid request-decode
inputs, its responses and streams the provider format's valid response- and stream-decode inputs. Each input is
translated ``--iterations`` times through :mod:`omniroute_translator.pipeline` (the functions the gRPC servicer
calls, without gRPC), each call timed with ``time.perf_counter_ns``; an input's cost is its median, a pair's cost
the median over its inputs. Streams are fed as one batch and their cost is divided by the number of events the
provider's stream holds (hub chunks it decodes to), so "per event" includes the session's setup and finish.
Same-format pairs take the pass-through paths (validate and patch ``model``; decode only for usage).

Prints a markdown table (microseconds). Single-threaded CPU work: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeAlias

from omniroute.v1 import common_pb2, translator_pb2
from omniroute_translator import pipeline
from omniroute_translator.codecs import CODECS
from omniroute_translator.codecs.base import Codec, CodecError
from omniroute_translator.goldens import DEFAULT_ROOT, find_cases

Format: TypeAlias = common_pb2.Format.ValueType


@dataclass
class Inputs:
    """One format's valid golden inputs, by role."""

    requests: list[bytes] = field(default_factory=list)
    responses: list[bytes] = field(default_factory=list)
    streams: list[tuple[bytes, int]] = field(default_factory=list)  # (bytes, events)


def collect(root: Path, table: Mapping[Format, Codec]) -> dict[Format, Inputs]:
    """Every decodable input of every codec in ``table`` (cases whose decode fails are error cases: skipped)."""
    fmt_of = {codec.name: fmt for fmt, codec in table.items()}
    out: dict[Format, Inputs] = {fmt: Inputs() for fmt in table}
    for case in find_cases(root, table.values()):
        fmt = fmt_of[case.codec.name]
        data = case.input()
        try:
            if case.kind == ("request", "decode"):
                case.codec.decode_request(data)
                out[fmt].requests.append(data)
            elif case.kind == ("response", "decode"):
                case.codec.decode_response(data)
                out[fmt].responses.append(data)
            elif case.kind == ("stream", "decode"):
                decoder = case.codec.stream_decoder()
                events = len(decoder.feed(data)) + len(decoder.end().chunks)
                out[fmt].streams.append((data, max(1, events)))
        except CodecError:
            continue
    return out


def median_ns(call: Callable[[], object], iterations: int) -> float:
    call()  # warm: first-call costs (imports, caches) are not per-request costs
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples)


def request_cost(src: Format, tgt: Format, bodies: list[bytes], iterations: int) -> float | None:
    costs = []
    for body in bodies:
        msg = translator_pb2.TranslateRequestIn(source=src, target=tgt, body=body, model="bench-model")
        if pipeline.translate_request(CODECS, msg).HasField("error"):
            continue  # the target cannot serve this request (a documented 400): not a translation
        costs.append(median_ns(partial(pipeline.translate_request, CODECS, msg), iterations))
    return statistics.median(costs) if costs else None


def response_cost(src: Format, tgt: Format, bodies: list[bytes], iterations: int) -> float | None:
    costs = []
    for body in bodies:
        msg = translator_pb2.TranslateResponseIn(
            source=src, target=tgt, body=body, model="bench-model", request_id="req-bench", created_unix=1
        )
        costs.append(median_ns(partial(pipeline.translate_response, CODECS, msg), iterations))
    return statistics.median(costs) if costs else None


def stream_event_cost(src: Format, tgt: Format, streams: list[tuple[bytes, int]], iterations: int) -> float | None:
    setup = translator_pb2.StreamSetup(source=src, target=tgt, model="bench-model", request_id="req-bench")

    def run(data: bytes) -> None:
        session = pipeline.open_stream(CODECS, setup)
        assert isinstance(session, pipeline.StreamSession)
        session.feed(data)
        session.finish()

    costs = [median_ns(partial(run, data), iterations) / events for data, events in streams]
    return statistics.median(costs) if costs else None


def _us(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1000:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="timed calls per input (default 200)")
    parser.add_argument("--goldens", type=Path, default=DEFAULT_ROOT, help="golden cases folder")
    args = parser.parse_args(argv)
    inputs = collect(args.goldens, CODECS)
    names = {fmt: codec.name for fmt, codec in CODECS.items()}
    started = time.monotonic()
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {args.iterations} iterations per input; µs, medians"
    )
    print()
    print("| client ← provider | request (client→provider) | response (provider→client) | stream, per event |")
    print("|---|---:|---:|---:|")
    for client in sorted(CODECS, key=lambda f: names[f]):
        for provider in sorted(CODECS, key=lambda f: names[f]):
            req = request_cost(client, provider, inputs[client].requests, args.iterations)
            resp = response_cost(provider, client, inputs[provider].responses, args.iterations)
            event = stream_event_cost(provider, client, inputs[provider].streams, args.iterations)
            same = " (same format)" if client == provider else ""
            print(f"| {names[client]} ← {names[provider]}{same} | {_us(req)} | {_us(resp)} | {_us(event)} |")
            sys.stdout.flush()
    counts = ", ".join(
        f"{names[f]} {len(i.requests)}/{len(i.responses)}/{len(i.streams)}" for f, i in sorted(inputs.items())
    )
    print()
    print(f"inputs (requests/responses/streams): {counts}; took {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
