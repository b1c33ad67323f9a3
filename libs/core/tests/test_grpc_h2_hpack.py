"""HPACK decoding of ``grpc_h2``: RFC 7541 Appendix C's examples, and the decoded-block cache's invalidation.

The examples run through one decoder per sequence (the dynamic table carries over from block to block), each
block twice: the second decode of a block that changed the table must not be answered from the cache (it is
decoded again against the changed table), and a block that did not change it must give the same fields.
"""

from __future__ import annotations

import hpack
import pytest

from omniroute_core.grpc_h2._hpack_decode import HeaderDecoder

REQUESTS = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com"),
     (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"), (b":authority", b"www.example.com"),
     (b"custom-key", b"custom-value")],
]  # fmt: skip
REQUEST_TABLES = [
    ([(b":authority", b"www.example.com")], 57),
    ([(b"cache-control", b"no-cache"), (b":authority", b"www.example.com")], 110),
    ([(b"custom-key", b"custom-value"), (b"cache-control", b"no-cache"), (b":authority", b"www.example.com")], 164),
]
DATE1, DATE2 = b"Mon, 21 Oct 2013 20:13:21 GMT", b"Mon, 21 Oct 2013 20:13:22 GMT"
LOCATION = (b"location", b"https://www.example.com")
COOKIE = (b"set-cookie", b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
RESPONSES = [
    [(b":status", b"302"), (b"cache-control", b"private"), (b"date", DATE1), LOCATION],
    [(b":status", b"307"), (b"cache-control", b"private"), (b"date", DATE1), LOCATION],
    [(b":status", b"200"), (b"cache-control", b"private"), (b"date", DATE2), LOCATION,
     (b"content-encoding", b"gzip"), COOKIE],
]  # fmt: skip
RESPONSE_TABLES = [
    ([LOCATION, (b"date", DATE1), (b"cache-control", b"private"), (b":status", b"302")], 222),
    ([(b":status", b"307"), LOCATION, (b"date", DATE1), (b"cache-control", b"private")], 222),
    ([COOKIE, (b"content-encoding", b"gzip"), (b"date", DATE2)], 215),
]
CASES = {
    # RFC 7541 C.3: requests without Huffman coding
    "C.3": (4096, REQUESTS, REQUEST_TABLES, [
        "828684410f7777772e6578616d706c652e636f6d",
        "828684be58086e6f2d6361636865",
        "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
    ]),
    # C.4: the same requests with Huffman coding
    "C.4": (4096, REQUESTS, REQUEST_TABLES, [
        "828684418cf1e3c2e5f23a6ba0ab90f4ff",
        "828684be5886a8eb10649cbf",
        "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
    ]),
    # C.5: responses without Huffman coding, a 256-byte table: evictions
    "C.5": (256, RESPONSES, RESPONSE_TABLES, [
        "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768"
        "747470733a2f2f7777772e6578616d706c652e636f6d",
        "4803333037c1c0bf",
        "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153"
        "444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31",
    ]),
    # C.6: the same responses with Huffman coding
    "C.6": (256, RESPONSES, RESPONSE_TABLES, [
        "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9"
        "ae82ae43d3",
        "4883640effc1c0bf",
        "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b39"
        "60d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
    ]),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_rfc7541_appendix_c(name: str) -> None:
    table_size, expected, tables, blocks = CASES[name]
    decoder = HeaderDecoder(max_table_size=table_size)
    for block, fields, table in zip(blocks, expected, tables, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == fields
        assert decoder.table() == table


def test_a_cached_block_is_not_reused_after_the_table_changed() -> None:
    decoder = HeaderDecoder()
    decoder.decode(bytes.fromhex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"))  # custom-key: custom-header
    indexed = b"\x82\xbe"  # :method GET, then dynamic index 62 (the newest entry)
    assert decoder.decode(indexed) == [(b":method", b"GET"), (b"custom-key", b"custom-header")]
    generation = decoder.generation
    assert decoder.decode(indexed) == [(b":method", b"GET"), (b"custom-key", b"custom-header")]  # from the cache
    assert decoder.generation == generation
    decoder.decode(b"\x40\x01a\x01b")  # a: b enters the table: index 62 is now it
    assert decoder.generation > generation
    assert decoder.decode(indexed) == [(b":method", b"GET"), (b"a", b"b")]
    tail = indexed + b"\x00\x01x\x01y"  # the same run of indexed fields, then a literal: the run is cached alone
    assert decoder.decode(tail) == [(b":method", b"GET"), (b"a", b"b"), (b"x", b"y")]
    decoder.decode(b"\x40\x01c\x01d")
    assert decoder.decode(tail) == [(b":method", b"GET"), (b"c", b"d"), (b"x", b"y")]
    generation = decoder.generation
    decoder.decode(b"\x20")  # a size update to 0 empties the table
    assert decoder.generation > generation
    with pytest.raises(hpack.HPACKDecodingError):
        decoder.decode(indexed)


def test_a_block_that_inserts_is_decoded_every_time() -> None:
    decoder = HeaderDecoder(max_table_size=64)  # room for one entry of this size
    block = b"\x40\x03abc\x03def\xbe"  # abc: def enters the table, then is referenced by index 62
    assert decoder.decode(block) == [(b"abc", b"def"), (b"abc", b"def")]
    assert decoder.decode(block) == [(b"abc", b"def"), (b"abc", b"def")]
    assert decoder.table() == ([(b"abc", b"def")], 38)  # the second copy evicted the first


def test_a_literal_without_indexing_leaves_the_table_and_the_cache_alone() -> None:
    decoder = HeaderDecoder()
    plain = b"\x00\x01x\x01y"  # literal without indexing (0000xxxx)
    never = b"\x10\x01x\x01y"  # never indexed (0001xxxx)
    for block in (plain, never, plain, never):
        assert decoder.decode(block) == [(b"x", b"y")]
    assert decoder.generation == 0
    assert decoder.table() == ([], 0)


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "an empty dynamic table's index 62"),
        (b"\x00\x05ab", "a truncated string"),
        (b"\x00", "a literal without its name"),
        (b"\xff\x80\x80\x80\x80\x80\x80", "an endless integer"),
        (b"\x82\x20", "a size update after a field"),
        (b"\x82\x83\x20", "a size update after a run of indexed fields"),
        (b"\x82\x83\x80", "index 0 after a run of indexed fields"),
        (b"\x3f\xe2\x1f", "a size update past our table size"),
        (b"\x00\x81\xff\x01y", "Huffman coding with an EOS symbol"),
    ],
)
def test_malformed_blocks_are_errors(block: bytes, why: str) -> None:
    with pytest.raises(hpack.HPACKDecodingError):
        HeaderDecoder().decode(block)


def test_the_header_list_limit() -> None:
    decoder = HeaderDecoder(max_header_list_size=100)
    decoder.decode(b"\x00\x01a" + b"\x43" + b"v" * 67)  # 1 + 67 + 32 bytes: at the limit
    with pytest.raises(hpack.HPACKDecodingError):
        decoder.decode(b"\x00\x01a" + b"\x44" + b"v" * 68)


def test_a_size_update_evicts_only_what_no_longer_fits() -> None:
    decoder = HeaderDecoder()
    decoder.decode(b"\x40\x01a\x01b")  # a: b (34 bytes) enters the table
    # a size update to the size the table already has (4096 = 31 + 4065) keeps its entries (RFC 7541 §4.3)
    assert decoder.decode(b"\x3f\xe1\x1f\xbe") == [(b"a", b"b")]
    assert decoder.decode(b"\x3f\x03\xbe") == [(b"a", b"b")]  # to 34 bytes: the entry still fits
    assert decoder.table() == ([(b"a", b"b")], 34)
    decoder.decode(b"\x3f\x02")  # to 33 bytes: it no longer does
    assert decoder.table() == ([], 0)
