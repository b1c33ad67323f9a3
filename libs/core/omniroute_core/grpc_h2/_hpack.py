"""HPACK for our request headers: a repeated field enters the server's dynamic table once, then costs one byte.

A call's fixed fields (``:path``, ``:authority``, ``content-type``, ``te``, a constant ``grpc-timeout``) are
the same on every call. Sent as plain literals, the server has to parse, validate and copy each of them on
every call; gRPC core's own client sends them as indexes into the dynamic table, and so does this encoder
(RFC 7541: a literal with incremental indexing the first time, an indexed field after). Values that change per
call (a request id) stay literals without indexing, so they never churn the table. Entries are only added while
they fit in the peer's table size: nothing is ever evicted, so an entry's index is fixed by how many entries
came after it.
"""

from __future__ import annotations

from omniroute_core.grpc_h2._wire import hpack_int

__all__ = ["HeaderEncoder"]

_STATIC_LEN = 61  # entries of RFC 7541's static table; the dynamic table's newest entry is index 62
_ENTRY_OVERHEAD = 32  # RFC 7541 §4.1


def _prefixed(flags: int, value: int, bits: int) -> bytes:
    encoded = hpack_int(value, bits)
    return bytes((encoded[0] | flags,)) + encoded[1:]


def _string(data: bytes) -> bytes:
    return hpack_int(len(data), 7) + data  # no Huffman coding


class HeaderEncoder:
    """One per connection (the dynamic table belongs to the connection's direction)."""

    def __init__(self, table_size: int = 4096) -> None:
        self._capacity = table_size
        self._used = 0
        self._inserted = 0
        self._position: dict[tuple[bytes, bytes], int] = {}  # field → its insertion number
        # field → its indexed representation, valid until the next insertion moves every index by one
        self._indexed: dict[tuple[bytes, bytes], bytes] = {}

    def cached(self, name: bytes, value: bytes) -> bytes:
        """A field expected to repeat: its index when the table has it, else added to the table if it fits."""
        encoded = self._indexed.get((name, value))
        if encoded is not None:
            return encoded
        number = self._position.get((name, value))
        if number is not None:
            encoded = self._indexed[name, value] = _prefixed(0x80, _STATIC_LEN + 1 + self._inserted - number, 7)
            return encoded
        size = len(name) + len(value) + _ENTRY_OVERHEAD
        if self._used + size > self._capacity:
            return literal_field(name, value)
        self._position[(name, value)] = self._inserted + 1
        self._inserted += 1
        self._indexed.clear()
        self._used += size
        return b"\x40" + _string(name) + _string(value)  # literal with incremental indexing, new name

    def shrink(self, table_size: int) -> bytes:
        """The peer's SETTINGS_HEADER_TABLE_SIZE changed: returns what must start the next header block."""
        if table_size >= self._used:
            self._capacity = table_size
            return b""
        # a dynamic table size update to 0 empties the table, then the new maximum (RFC 7541 §4.2, §6.3)
        self._capacity, self._used, self._inserted = table_size, 0, 0
        self._position.clear()
        self._indexed.clear()
        return _prefixed(0x20, 0, 5) + _prefixed(0x20, table_size, 5)


def literal_field(name: bytes, value: bytes) -> bytes:
    """A literal field without indexing, with a literal name, no Huffman coding (RFC 7541 §6.2.2)."""
    return b"\x00" + _string(name) + _string(value)
