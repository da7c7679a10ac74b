"""The wire encoding: plain data round-trips, everything else and every malformed byte string is refused."""

from __future__ import annotations

import contextlib
import math
import socket
import struct
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capstan.sandbox import protocol
from capstan.sandbox.protocol import Channel, EncodeError, ProtocolError, decode, encode

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(plain)
def test_plain_data_round_trips(value):
    assert decode(encode(value)) == value


@settings(max_examples=80, deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_random_bytes_never_crash_the_decoder(data):
    with contextlib.suppress(ProtocolError):
        decode(data)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int64", "float32", "float64", "complex128"])
def test_arrays_round_trip_with_shape_and_dtype(dtype):
    arr = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    out = decode(encode(arr))
    assert out.dtype == arr.dtype and out.shape == arr.shape and np.array_equal(out, arr)
    out[0, 0, 0] = 1  # decoded arrays are writable copies


def test_non_contiguous_and_big_endian_arrays():
    arr = np.arange(12.0).reshape(3, 4)[:, ::2]
    assert np.array_equal(decode(encode(arr)), arr)
    big = np.arange(5, dtype=">i4")
    assert decode(encode(big)).tolist() == [0, 1, 2, 3, 4]


def test_nan_inf_and_big_ints():
    out = decode(encode([math.nan, math.inf, 2**100, -(2**70), np.float32(1.5), np.int64(3)]))
    assert math.isnan(out[0]) and out[1] == math.inf and out[2] == 2**100 and out[3] == -(2**70)
    assert out[4:] == [1.5, 3]


@pytest.mark.parametrize(
    "value",
    [object(), {1: "a"}, {1, 2}, np.array([None]), np.zeros(2, dtype=[("a", "i4")]), len, 2**20000],
    ids=["object", "int_key", "set", "object_array", "structured_array", "builtin_function", "huge_int"],
)
def test_non_plain_values_are_refused(value):
    with pytest.raises(EncodeError):
        encode(value)


def test_depth_and_size_limits():
    deep = []
    for _ in range(protocol.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(EncodeError, match="deeper"):
        encode(deep)
    with pytest.raises(EncodeError, match="limit"):
        encode(list(range(10_000)), max_bytes=1000)
    nested = b"l\x01\x00\x00\x00" * (protocol.MAX_DEPTH + 5) + b"N"
    with pytest.raises(ProtocolError, match="deeper"):
        decode(nested)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"s\xff\xff\xff\xff",  # string longer than the message
        b"l\xff\xff\xff\x7f",  # claims 2 billion items
        b"d\x01\x00\x00\x00i" + b"\0" * 8 + b"N",  # non-string key
        b"a\x63\x01" + b"\0" * 8,  # unknown dtype code
        b"a\x0b\x01\x02\x00\x00\x00\x08\x00\x00\x00" + b"\0" * 8,  # 2 float64 need 16 bytes
        b"NN",  # trailing bytes
        b"I\x03\x00\x00\x001e3",  # not an integer
        b"\x00",  # unknown tag
        b"c" + b"os\nsystem\n",  # pickle opcode soup
    ],
)
def test_malformed_messages_are_refused(data):
    with pytest.raises(ProtocolError):
        decode(data)


def test_channel_frames_timeout_cancel_and_size_cap():
    a, b = socket.socketpair()
    host, worker = Channel(a, max_frame=1000), Channel(b)
    worker.send(("call", "f", (1, 2.5), {"k": "v"}))
    assert host.recv(time.monotonic() + 1) == ("call", "f", (1, 2.5), {"k": "v"})
    with pytest.raises(protocol.ChannelTimeout):
        host.recv(time.monotonic() + 0.05)
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    with pytest.raises(protocol.ChannelCancelled):
        host.recv(time.monotonic() + 5, cancel)
    b.sendall(struct.pack(">I", 10**6))  # announces a frame over the host's cap
    with pytest.raises(ProtocolError, match="limit"):
        host.recv(time.monotonic() + 1)
    worker.close()
    host.close()


def test_channel_reports_a_closed_peer():
    a, b = socket.socketpair()
    b.close()
    with pytest.raises(protocol.ChannelClosed):
        Channel(a).recv(time.monotonic() + 1)
    a.close()


def test_lone_surrogates_arrive_as_replacement_characters():
    assert decode(encode(["ok", "a\ud800b"])) == ["ok", "a\ufffdb"]
    assert decode(encode({"k": "\udfff"})) == {"k": "\ufffd"}
