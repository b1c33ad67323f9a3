"""Golden cases: run every codec over its named cases and write (or check) the expected files.

``uv run python -m omniroute_translator.goldens`` regenerates the expected files; ``--check`` only compares and
exits 1 on any difference. Goldens change only through this command (STYLE rule 4).

A case is a folder ``<root>/<codec name>/<behaviour>/`` with a ``case.json``::

    {"kind": "request" | "response" | "stream" | "error", "direction": "decode" | "encode",
     "description": "...", "model": "...", "context": {"model", "request_id", "created_unix"}, "complete": true,
     "target": "<codec name>"}

and one input file; everything else in the folder is output, written by this command. ``target`` (decode cases
only) names the codec that writes ``out.*``: a pair case proving an A→B behaviour through the hub (STYLE rule 2);
without it the case's own codec re-encodes.

=========  =========  ===============  =====================================================================
kind       direction  input            outputs
=========  =========  ===============  =====================================================================
request    decode     native.json      hub.json (or decode_error.json), out.json = encode_request(hub, model)
request    encode     hub.json         out.json
response   decode     native.json      hub.json + usage.json (or decode_error.json), out.json = encode_response
response   encode     hub.json         out.json
stream     decode     native.sse       hub.jsonl (one chunk a line), end.json (complete, usage), out.sse
stream     encode     hub.jsonl        out.sse (terminal event appended when case.json says "complete")
error      render     error.json       out.json = render_error, out.sse = render_stream_error
=========  =========  ===============  =====================================================================
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omniroute.v1 import common_pb2
from omniroute_core import jsonx
from omniroute_translator.codecs import CODECS
from omniroute_translator.codecs.base import Codec, CodecError, Context
from omniroute_translator.codecs.hub import usage_to_proto

__all__ = ["DEFAULT_ROOT", "Case", "check", "find_cases", "main", "outputs", "pretty", "regenerate"]

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "tests" / "goldens"

_INPUTS: Mapping[tuple[str, str], str] = {
    ("request", "decode"): "native.json",
    ("request", "encode"): "hub.json",
    ("response", "decode"): "native.json",
    ("response", "encode"): "hub.json",
    ("stream", "decode"): "native.sse",
    ("stream", "encode"): "hub.jsonl",
    ("error", "render"): "error.json",
}


@dataclass(frozen=True, slots=True)
class Case:
    codec: Codec
    path: Path
    spec: Mapping[str, Any]
    target: Codec | None = None

    @property
    def encoder(self) -> Codec:
        """The codec that writes ``out.*``: the pair's target, else the case's own codec."""
        return self.target or self.codec

    @property
    def name(self) -> str:
        return f"{self.codec.name}/{self.path.name}"

    @property
    def kind(self) -> tuple[str, str]:
        return str(self.spec.get("kind")), str(self.spec.get("direction"))

    @property
    def input_name(self) -> str:
        try:
            return _INPUTS[self.kind]
        except KeyError:
            raise ValueError(f"{self.name}: unknown kind/direction {self.kind}") from None

    def input(self) -> bytes:
        return (self.path / self.input_name).read_bytes()

    def context(self) -> Context:
        ctx = self.spec.get("context") or {}
        return Context(
            model=str(ctx.get("model", "")),
            request_id=str(ctx.get("request_id", "")),
            created_unix=int(ctx.get("created_unix", 0)),
        )


def find_cases(root: Path = DEFAULT_ROOT, codecs: Iterable[Codec] = CODECS.values()) -> Iterator[Case]:
    """Every case folder under ``root`` whose parent is named after a codec, sorted by name. A case naming an
    unknown ``target`` is a ``ValueError``."""
    by_name = {codec.name: codec for codec in codecs}
    for codec in by_name.values():
        for case_json in sorted((root / codec.name).glob("*/case.json")):
            spec = jsonx.loads(case_json.read_bytes())
            target = spec.get("target")
            if target is not None and target not in by_name:
                raise ValueError(f"{codec.name}/{case_json.parent.name}: unknown target codec {target!r}")
            yield Case(codec, case_json.parent, spec, by_name[target] if target is not None else None)


def pretty(value: Any, indent: str = "") -> str:
    """Indented JSON (two spaces, keys in their given order) for reviewable golden files; scalars and empty
    containers are written by :mod:`omniroute_core.jsonx`, so strings are escaped exactly as elsewhere."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{jsonx.dumps_str(str(k))}: {pretty(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value:
        return "[\n" + ",\n".join(inner + pretty(v, inner) for v in value) + "\n" + indent + "]"
    return jsonx.dumps_str(value)


def _json(value: Any) -> bytes:
    return (pretty(value) + "\n").encode()


def _error_dict(err: common_pb2.Error) -> dict[str, Any]:
    return {"status": err.status, "type": err.type, "code": err.code, "message": err.message, "param": err.param}


def _usage_dict(usage: common_pb2.Usage) -> dict[str, int]:
    return {f.name: getattr(usage, f.name) for f in common_pb2.Usage.DESCRIPTOR.fields}


def _error_from(doc: Mapping[str, Any]) -> common_pb2.Error:
    return common_pb2.Error(
        status=int(doc.get("status", 0)),
        type=str(doc.get("type", "")),
        code=str(doc.get("code", "")),
        message=str(doc.get("message", "")),
        param=str(doc.get("param", "")),
        retry_after_ms=int(doc.get("retry_after_ms", 0)),
    )


def outputs(case: Case, pieces: Iterable[bytes] | None = None) -> dict[str, bytes]:
    """The expected files of ``case``, by name. ``pieces`` replaces the input of a stream-decode case with the
    same bytes split differently (the output must not depend on the split)."""
    codec, data = case.codec, case.input()
    kind = case.kind
    if kind == ("stream", "decode"):
        return _stream_decode(case, [data] if pieces is None else list(pieces))
    if kind == ("stream", "encode"):
        chunks = [jsonx.loads(line) for line in data.splitlines() if line.strip()]
        encoder = codec.stream_encoder(case.context())
        out = b"".join(encoder.encode(c) for c in chunks)
        if case.spec.get("complete"):
            out += encoder.finish(usage_to_proto(next((c["usage"] for c in chunks if c.get("usage")), None)))
        return {"out.sse": out}
    if kind == ("error", "render"):
        err = _error_from(jsonx.loads(data))
        return {"out.json": codec.render_error(err) + b"\n", "out.sse": codec.render_stream_error(err)}
    return _body(case, data)


def _body(case: Case, data: bytes) -> dict[str, bytes]:
    codec = case.codec
    kind, direction = case.kind
    files: dict[str, bytes] = {}
    if direction == "encode":
        hub = jsonx.loads(data)
    else:
        try:
            if kind == "request":
                hub = codec.decode_request(data)
            else:
                decoded = codec.decode_response(data)
                hub = decoded.hub
                files["usage.json"] = _json(_usage_dict(decoded.usage))
        except CodecError as exc:
            return {"decode_error.json": _json(_error_dict(exc.error))}
        files["hub.json"] = _json(hub)
    if kind == "request":
        body = case.encoder.encode_request(hub, str(case.spec.get("model") or hub.get("model") or ""))
    else:
        body = case.encoder.encode_response(hub, case.context())
    files["out.json"] = _json(jsonx.loads(body))
    return files


def _stream_decode(case: Case, pieces: list[bytes]) -> dict[str, bytes]:
    decoder = case.codec.stream_decoder()
    chunks = [chunk for piece in pieces for chunk in decoder.feed(piece)]
    end = decoder.end()
    chunks += end.chunks
    usage = common_pb2.Usage()
    for chunk in chunks:
        if isinstance(chunk.get("usage"), dict):
            usage = usage_to_proto(chunk["usage"])
    encoder = case.encoder.stream_encoder(case.context())
    out = b"".join(encoder.encode(c) for c in chunks) + (encoder.finish(usage) if end.complete else b"")
    return {
        "hub.jsonl": b"".join(jsonx.dumps(c) + b"\n" for c in chunks),
        "end.json": _json({"complete": end.complete, "usage": _usage_dict(usage)}),
        "out.sse": out,
    }


def _diff(case: Case) -> tuple[dict[str, bytes], list[str], list[str]]:
    """(expected files, names that differ or are missing, stale output files)."""
    expected = outputs(case)
    keep = {"case.json", case.input_name, *expected}
    stale = sorted(p.name for p in case.path.iterdir() if p.name not in keep)
    changed = [
        name
        for name, content in expected.items()
        if not (case.path / name).exists() or (case.path / name).read_bytes() != content
    ]
    return expected, changed, stale


def regenerate(root: Path = DEFAULT_ROOT) -> list[str]:
    """Write every case's expected files and delete stale ones. Returns ``case/file`` names that changed."""
    touched: list[str] = []
    for case in find_cases(root):
        expected, changed, stale = _diff(case)
        for name in changed:
            (case.path / name).write_bytes(expected[name])
        for name in stale:
            (case.path / name).unlink()
        touched += [f"{case.name}/{name}" for name in (*changed, *stale)]
    return touched


def check(root: Path = DEFAULT_ROOT) -> list[str]:
    """``case/file`` names whose content differs from what the codecs produce now (or that are stale)."""
    problems: list[str] = []
    for case in find_cases(root):
        _, changed, stale = _diff(case)
        problems += [f"{case.name}/{name}" for name in changed]
        problems += [f"{case.name}/{name} (stale)" for name in stale]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omniroute_translator.goldens", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on any difference")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the goldens folder")
    args = parser.parse_args(argv)
    names = check(args.root) if args.check else regenerate(args.root)
    verb = "differ" if args.check else "updated"
    for name in names:
        print(f"{verb}: {name}")
    print(f"{len(names)} golden file(s) {verb}", file=sys.stderr)
    return 1 if args.check and names else 0


if __name__ == "__main__":
    sys.exit(main())
