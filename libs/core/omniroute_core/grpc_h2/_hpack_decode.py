"""HPACK decoding (RFC 7541) with a cache of decoded header blocks, for the frame loop of both ends.

In steady state a connection's blocks repeat byte for byte: gRPC core and our own encoder send a call's fixed
fields (``:path``, ``content-type``, ``:status``, ``grpc-status 0`` …) as indexes into the static or dynamic
table once they have entered it, so a reply head, a trailer block or a request head is the same few bytes on
every call. Such a block decodes to the same fields for as long as the dynamic table stays the same, so its
decoded list is kept, keyed by the block's bytes together with the table's *generation*: a counter bumped by
every change of the dynamic table (an insertion, with the evictions it causes, and a size update). A block
that changes the table (a literal with incremental indexing, a size update) is always decoded and never
cached, and the entries cached under the old generation are dead from then on. Huffman-coded strings are
also remembered by their coded bytes (their decoding depends on nothing else), so a block that differs per call
only in one value (a request id, a deadline) still pays little for its other literals, and the run of one-byte
indexed fields such a block starts with is cached as a block of its own.

Errors (a truncated block, an index past the tables, a size update above our limit or after a field, a header
list past ``max_header_list_size``, bad Huffman coding) raise ``hpack.HPACKDecodingError``; the connection
must then be closed, as the table may have diverged from the peer's.
"""

from __future__ import annotations

import re

from hpack import HPACKDecodingError
from hpack.huffman_table import decode_huffman
from hpack.table import HeaderTable

__all__ = ["HeaderDecoder"]

_STATIC: tuple[tuple[bytes, bytes], ...] = ((b"", b""), *HeaderTable.STATIC_TABLE)  # index 0 is never valid
_STATIC_LEN = len(HeaderTable.STATIC_TABLE)  # 61
_ENTRY_OVERHEAD = 32  # RFC 7541 §4.1
_CACHE_ENTRIES = 256  # per cache and connection; a full cache is cleared (steady state needs a handful)
_CACHE_BLOCK = 1024  # longer blocks are not cached (bounds the memory a peer can make us keep)
_CACHE_STRING = 256  # longer Huffman strings are not remembered
# a run of one-byte indexed fields (indexes 1 to 126) from a block's start
_INDEXED_RUN = re.compile(rb"[\x81-\xfe]*")
_MAX_INT_BYTES = 5  # continuation bytes of an integer: more than 2**28 is not a size or index we accept
_Entry = tuple[int, tuple[tuple[bytes, bytes], ...], int]


class HeaderDecoder:
    """One per connection (the peer's encoder's dynamic table): ``decode`` each header block in order.

    ``max_header_list_size`` bounds a block's decoded size (names, values and 32 bytes per field);
    ``max_table_size`` is our SETTINGS_HEADER_TABLE_SIZE, the largest table the peer may ask for.
    """

    def __init__(self, max_header_list_size: int = 65_536, max_table_size: int = 4096) -> None:
        self._list_limit = max_header_list_size
        self.max_table_size = max_table_size
        self.table_size = max_table_size  # the current maximum, as the peer's size updates set it
        self.generation = 0  # bumped whenever the dynamic table changes
        self._entries: list[tuple[bytes, bytes]] = []  # oldest first: dynamic index 1 is the last one
        self._used = 0
        self._blocks: dict[bytes, _Entry] = {}  # block → (generation, fields, their size)
        self._strings: dict[bytes, bytes] = {}

    @property
    def max_header_list_size(self) -> int:
        return self._list_limit

    @max_header_list_size.setter
    def max_header_list_size(self, value: int) -> None:
        self._list_limit = value
        self._blocks.clear()  # decoded under the old limit

    def table(self) -> tuple[list[tuple[bytes, bytes]], int]:
        """The dynamic table's entries, newest (index 62) first, and the bytes they count for (§4.1)."""
        return self._entries[::-1], self._used

    def decode(self, block: bytes) -> list[tuple[bytes, bytes]]:
        """The fields of one complete header block (HEADERS plus CONTINUATION), in order, as bytes."""
        entry = self._blocks.get(block)  # the steady state's path, before any call
        if entry is None or entry[0] != self.generation:
            entry = self._entry(block)
        return list(entry[1])

    def _entry(self, block: bytes) -> _Entry:
        """(the generation it was decoded under, its fields, their size) of a block, from the cache if there."""
        entry = self._blocks.get(block)
        if entry is not None and entry[0] == self.generation:
            return entry
        generation = self.generation
        match = _INDEXED_RUN.match(block)
        run = match.end() if match else 0
        if 1 < run < len(block):
            # the fixed fields first, then what differs per call (a request id): the run is a block of its own
            _, head, size = self._entry(block[:run])
            fields, size = self._decode(block, run, list(head), size)
        else:
            fields, size = self._decode(block, 0, [], 0)
        entry = (generation, tuple(fields), size)
        if self.generation == generation and len(block) <= _CACHE_BLOCK:
            if len(self._blocks) >= _CACHE_ENTRIES:
                self._blocks.clear()
            self._blocks[block] = entry
        return entry

    def _decode(
        self, data: bytes, pos: int, fields: list[tuple[bytes, bytes]], size: int
    ) -> tuple[list[tuple[bytes, bytes]], int]:
        """Decode ``data`` from ``pos`` on, after ``fields`` (of ``size`` bytes) already decoded before it."""
        end = len(data)
        while pos < end:
            first = data[pos]
            if first & 0x80:  # indexed field (§6.1)
                index, pos = _integer(data, pos, 7)
                field = self._lookup(index)
            elif first & 0x40:  # literal with incremental indexing (§6.2.1)
                field, pos = self._literal(data, pos, 6)
                self._insert(field)
            elif first & 0x20:  # dynamic table size update (§6.3): only before the block's first field
                if fields:
                    raise HPACKDecodingError("a table size update after a header field")
                new_size, pos = _integer(data, pos, 5)
                if new_size > self.max_table_size:
                    raise HPACKDecodingError(f"table size update to {new_size} past our {self.max_table_size}")
                self.table_size = new_size
                self._evict(new_size)  # only what no longer fits (§4.3); a size of 0 empties it
                self.generation += 1
                continue
            else:  # literal without indexing (0000xxxx) or never indexed (0001xxxx): the same to a receiver
                field, pos = self._literal(data, pos, 4)
            fields.append(field)
            size += len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
            if size > self._list_limit:
                raise HPACKDecodingError(f"a header list larger than {self._list_limit} bytes")
        return fields, size

    def _lookup(self, index: int) -> tuple[bytes, bytes]:
        if 0 < index <= _STATIC_LEN:
            return _STATIC[index]
        dynamic = index - _STATIC_LEN
        if index == 0 or dynamic > len(self._entries):
            raise HPACKDecodingError(f"header table index {index} out of range")
        return self._entries[-dynamic]

    def _literal(self, data: bytes, pos: int, prefix: int) -> tuple[tuple[bytes, bytes], int]:
        """A literal field's name (indexed when the prefix bits are not zero, else a string) and value."""
        if data[pos] & ((1 << prefix) - 1):
            index, pos = _integer(data, pos, prefix)
            name = self._lookup(index)[0]
        else:
            name, pos = self._string(data, pos + 1)
        value, pos = self._string(data, pos)
        return (name, value), pos

    def _string(self, data: bytes, pos: int) -> tuple[bytes, int]:
        if pos >= len(data):
            raise HPACKDecodingError("truncated header block")
        huffman = data[pos] & 0x80
        length, pos = _integer(data, pos, 7)
        stop = pos + length
        if stop > len(data):
            raise HPACKDecodingError("truncated header block")
        raw = data[pos:stop]
        if not huffman:
            return raw, stop
        text = self._strings.get(raw)
        if text is None:
            text = decode_huffman(raw)
            if length <= _CACHE_STRING:
                if len(self._strings) >= _CACHE_ENTRIES:
                    self._strings.clear()
                self._strings[raw] = text
        return text, stop

    def _insert(self, field: tuple[bytes, bytes]) -> None:
        """Add an entry, evicting the oldest ones to make room (§4.4); an entry larger than the table empties
        it and is not added."""
        size = len(field[0]) + len(field[1]) + _ENTRY_OVERHEAD
        self.generation += 1
        if size > self.table_size:
            self._entries.clear()
            self._used = 0
            return
        self._evict(self.table_size - size)
        self._entries.append(field)
        self._used += size

    def _evict(self, room: int) -> None:
        """Drop the oldest entries until at most ``room`` bytes are used."""
        entries = self._entries
        drop = 0
        while self._used > room:
            name, value = entries[drop]
            self._used -= len(name) + len(value) + _ENTRY_OVERHEAD
            drop += 1
        if drop:
            del entries[:drop]


def _integer(data: bytes, pos: int, prefix: int) -> tuple[int, int]:
    """An integer with an N-bit prefix at ``data[pos]`` (§5.1): its value and the position after it."""
    limit = (1 << prefix) - 1
    value = data[pos] & limit
    pos += 1
    if value < limit:
        return value, pos
    shift = 0
    while True:
        if pos >= len(data):
            raise HPACKDecodingError("truncated integer")
        byte = data[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift >= 7 * _MAX_INT_BYTES:
            raise HPACKDecodingError("integer too large")
