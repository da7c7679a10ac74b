"""Wire format between the service and a sandbox worker: length-prefixed frames of a small
tagged binary encoding. Never pickle: the host decodes bytes written by untrusted code, so the
decoder accepts only plain data (None, bool, int, float, str, bytes, list, tuple, dict with str
keys, numpy arrays of an allowlisted dtype), checks every length against what is left, limits
nesting depth, and the host refuses frames over its size cap before reading them.

Frame: 4-byte big-endian payload length, then the payload (one encoded value).
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import struct
import time

import numpy as np

MAX_DEPTH = 48
# cells of an array's shape, an empty dimension counted as one: an empty array of shape
# (65535, 65535, 0) is 47 bytes on the wire and billions of rows to whoever iterates over it
MAX_ARRAY_CELLS = 1 << 23
MAX_READS_PER_REPORT = 256  # memoised answers a worker reports in one "reads" message
MAX_READS_REPORT_BYTES = 1 << 20
DEFAULT_MAX_FRAME = 8 << 20

# dtype allowlist: one byte on the wire names the dtype (always little-endian, C order).
_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
)
_DTYPE_CODE = {np.dtype(name): i for i, name in enumerate(_DTYPES)}
_CODE_DTYPE = [np.dtype(name).newbyteorder("<") for name in _DTYPES]
_NATIVE_DTYPE = [np.dtype(name) for name in _DTYPES]

_HDR = struct.Struct(">I")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_MAX_BIGINT_DIGITS = 4000


class ProtocolError(Exception):
    """Bytes that are not a valid message, or a message over a size/depth limit."""


class EncodeError(TypeError):
    """A value that cannot cross the channel (not plain data, too deep or too large)."""


class ChannelClosed(ProtocolError):
    """The other side closed the channel (for the host: the worker died)."""


def _worker_gone() -> ChannelClosed:
    return ChannelClosed("the sandbox worker closed its channel (it exited or was killed)")


class ChannelTimeout(Exception):
    """No complete message before the deadline."""


class ChannelCancelled(Exception):
    """The cancel event was set while waiting."""


# --------------------------------------------------------------------------- encoding


def frame(payload: bytes) -> bytes:
    """An encoded payload with its length prefix, as `Channel` sends it."""
    return _HDR.pack(len(payload)) + payload


def encode(value, max_bytes: int = DEFAULT_MAX_FRAME) -> bytes:
    """Encode plain data; raises EncodeError naming the offending type or limit."""
    out: list[bytes] = []
    size = _encode(value, out, 0, max_bytes)
    if size > max_bytes:
        raise EncodeError(f"message of {size} bytes is over the {max_bytes}-byte limit")
    return b"".join(out)


def _encode(v, out: list, depth: int, budget: int) -> int:
    if depth > MAX_DEPTH:
        raise EncodeError(f"data nested deeper than {MAX_DEPTH} levels")
    t = type(v)
    if t is str:
        return _encode_str(v, out)
    if v is None or t is bool:
        out.append(b"N" if v is None else b"T" if v else b"F")
        return 1
    if t is float:
        out.append(b"f" + _F64.pack(v))
        return 9
    if t is int:
        return _encode_int(v, out)
    if t is list or t is tuple:
        return _encode_sequence(v, out, depth, budget)
    if t is dict:
        return _encode_dict(v, out, depth, budget)
    if t is bytes:
        out.append(b"b" + _U32.pack(len(v)))
        out.append(v)
        return 5 + len(v)
    if isinstance(v, np.ndarray):
        return _encode_array(v, out, budget)
    if isinstance(v, np.generic) and v.dtype in _DTYPE_CODE:
        return _encode(v.item(), out, depth, budget)
    raise EncodeError(
        f"a value of type {t.__name__} cannot be sent; use plain data "
        "(None, bool, int, float, str, list, tuple, dict with str keys, numpy arrays)"
    )


def _encode_str(v: str, out: list) -> int:
    try:
        b = v.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: send U+FFFD instead (pairs are joined)
        b = v.encode("utf-16", "surrogatepass").decode("utf-16", "replace").encode("utf-8")
    out.append(b"s" + _U32.pack(len(b)))
    out.append(b)
    return 5 + len(b)


def _encode_int(v: int, out: list) -> int:
    if _I64_MIN <= v <= _I64_MAX:
        out.append(b"i" + _I64.pack(v))
        return 9
    digits = str(v).encode() if v.bit_length() < 13000 else b""
    if not digits or len(digits) > _MAX_BIGINT_DIGITS:
        raise EncodeError(f"integer too large to send (over {_MAX_BIGINT_DIGITS} digits)")
    out.append(b"I" + _U32.pack(len(digits)))
    out.append(digits)
    return 5 + len(digits)


def _encode_sequence(v: list | tuple, out: list, depth: int, budget: int) -> int:
    out.append((b"l" if type(v) is list else b"t") + _U32.pack(len(v)))
    size = 5
    for item in v:
        size += _encode(item, out, depth + 1, budget - size)
        if size > budget:
            raise EncodeError(f"message over the {budget}-byte limit")
    return size


def _encode_dict(v: dict, out: list, depth: int, budget: int) -> int:
    out.append(b"d" + _U32.pack(len(v)))
    size = 5
    for key, item in v.items():
        if type(key) is not str:
            raise EncodeError(f"dict keys must be str, got {type(key).__name__}")
        size += _encode(key, out, depth + 1, budget) + _encode(item, out, depth + 1, budget - size)
        if size > budget:
            raise EncodeError(f"message over the {budget}-byte limit")
    return size


def _encode_array(a: np.ndarray, out: list, budget: int) -> int:
    code = _DTYPE_CODE.get(a.dtype) if a.dtype.kind in "biufc" else None
    if code is None and a.dtype.kind in "biufc":
        code = _DTYPE_CODE.get(a.dtype.newbyteorder("="))
    if code is None:
        raise EncodeError(f"numpy arrays of dtype {a.dtype} cannot be sent (allowed: {', '.join(_DTYPES)})")
    if a.ndim > 32:
        raise EncodeError("numpy array has more than 32 dimensions")
    if any(n > 0xFFFFFFFF for n in a.shape) or _cells(a.shape) > MAX_ARRAY_CELLS:
        raise EncodeError(
            f"numpy array of shape {a.shape} is too long to send (at most {MAX_ARRAY_CELLS} cells, an "
            "empty dimension counted as one)"
        )
    if a.nbytes > budget:
        raise EncodeError(f"numpy array of {a.nbytes} bytes is over the {budget}-byte limit")
    wire = _CODE_DTYPE[code]
    raw = (a if a.dtype == wire else a.astype(wire)).tobytes()  # tobytes() is always C order
    out.append(b"a" + bytes((code, a.ndim)) + struct.pack(f"<{a.ndim + 1}I", *a.shape, len(raw)))
    out.append(raw)
    return 7 + 4 * a.ndim + len(raw)


# --------------------------------------------------------------------------- decoding


def decode(data: bytes | memoryview):
    """Decode one value; raises ProtocolError on anything malformed or trailing bytes."""
    mv = memoryview(data)
    try:
        value, pos = _decode(mv, 0, 0)
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise ProtocolError(f"malformed message: {exc}") from None
    if pos != len(mv):
        raise ProtocolError(f"malformed message: {len(mv) - pos} trailing bytes")
    return value


def decode_tuple(data: bytes | memoryview) -> tuple:
    """Decode a message that is a tuple (a call, a reply); ProtocolError on anything else."""
    value = decode(data)
    if type(value) is not tuple:
        raise ProtocolError(f"expected a tuple, got a {type(value).__name__}")
    return value


_SCALARS = {0x4E: None, 0x54: True, 0x46: False}  # N, T, F


def _decode(mv: memoryview, pos: int, depth: int):
    if depth > MAX_DEPTH:
        raise ProtocolError(f"message nested deeper than {MAX_DEPTH} levels")
    tag = mv[pos]
    pos += 1
    if tag == 0x73:  # s
        # lone surrogates (legal in a Python str, not in UTF-8) become U+FFFD here, so nothing
        # downstream (JSON, the trace database) chokes on what a program printed or passed
        raw, end = _sized(mv, pos, "string runs")
        return str(raw, "utf-8", "replace"), end
    if tag == 0x69:  # i
        return _I64.unpack_from(mv, pos)[0], pos + 8
    if tag == 0x66:  # f
        return _F64.unpack_from(mv, pos)[0], pos + 8
    if tag in _SCALARS:
        return _SCALARS[tag], pos
    if tag in (0x6C, 0x74):  # l, t
        items, pos = _decode_items(mv, pos, depth)
        return (items if tag == 0x6C else tuple(items)), pos
    if tag == 0x64:  # d
        return _decode_dict(mv, pos, depth)
    if tag == 0x62:  # b
        raw, end = _sized(mv, pos, "bytes run")
        return bytes(raw), end
    if tag == 0x49:  # I
        return _decode_bigint(mv, pos)
    if tag == 0x61:  # a
        return _decode_array(mv, pos)
    raise ProtocolError(f"unknown tag byte {tag}")


def _sized(mv: memoryview, pos: int, what: str) -> tuple[memoryview, int]:
    """The `n` bytes after a u32 length `n` at `pos`, and the position after them."""
    (n,) = _U32.unpack_from(mv, pos)
    end = pos + 4 + n
    if end > len(mv):
        raise ProtocolError(f"{what} past the end of the message")
    return mv[pos + 4 : end], end


def _decode_items(mv: memoryview, pos: int, depth: int) -> tuple[list, int]:
    (n,) = _U32.unpack_from(mv, pos)
    pos += 4
    if n > len(mv) - pos:
        raise ProtocolError("sequence length exceeds the message")
    items = []
    for _ in range(n):
        item, pos = _decode(mv, pos, depth + 1)
        items.append(item)
    return items, pos


def _decode_dict(mv: memoryview, pos: int, depth: int) -> tuple[dict, int]:
    (n,) = _U32.unpack_from(mv, pos)
    pos += 4
    if n > len(mv) - pos:
        raise ProtocolError("dict length exceeds the message")
    result = {}
    for _ in range(n):
        if mv[pos] != 0x73:
            raise ProtocolError("dict key is not a string")
        key, pos = _decode(mv, pos, depth + 1)
        result[key], pos = _decode(mv, pos, depth + 1)
    return result, pos


def _decode_bigint(mv: memoryview, pos: int) -> tuple[int, int]:
    (n,) = _U32.unpack_from(mv, pos)
    end = pos + 4 + n
    if n > _MAX_BIGINT_DIGITS or end > len(mv):
        raise ProtocolError("bad big integer")
    text = str(mv[pos + 4 : end], "ascii")
    if not text.lstrip("-").isdigit():
        raise ProtocolError("bad big integer")
    return int(text), end


def _cells(shape: tuple[int, ...]) -> int:
    return math.prod(max(n, 1) for n in shape)


def _decode_array(mv: memoryview, pos: int):
    code, ndim = mv[pos], mv[pos + 1]
    pos += 2
    if code >= len(_CODE_DTYPE) or ndim > 32:
        raise ProtocolError("bad array header")
    *shape, nbytes = struct.unpack_from(f"<{ndim + 1}I", mv, pos)
    shape = tuple(shape)
    pos += 4 * ndim + 4
    dtype = _CODE_DTYPE[code]
    if _cells(shape) > MAX_ARRAY_CELLS:
        raise ProtocolError("array shape too large")
    if math.prod(shape) * dtype.itemsize != nbytes or pos + nbytes > len(mv):
        raise ProtocolError("array shape does not match its data")
    arr = np.frombuffer(mv[pos : pos + nbytes], dtype=dtype).reshape(shape).astype(_NATIVE_DTYPE[code])
    return arr, pos + nbytes


# --------------------------------------------------------------------------- channel


class Channel:
    """Framed messages over a connected stream socket.

    The host uses `recv(deadline, cancel)` and `send(value, deadline=, cancel=)`, which poll in
    short slices so a cancel is noticed within `poll_slice_s`; a worker that stops reading can
    therefore not hold the host past the deadline. The worker uses plain blocking calls.
    """

    def __init__(
        self,
        sock: socket.socket,
        max_frame: int = DEFAULT_MAX_FRAME,
        poll_slice_s: float = 0.02,
    ):
        self.sock = sock
        self.max_frame = max_frame
        self.poll_slice_s = poll_slice_s
        self._buf = bytearray()
        self._pollers: dict[int, select.poll] = {}

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, value, max_bytes: int | None = None, deadline: float | None = None, cancel=None) -> None:
        payload = encode(value, max_bytes or self.max_frame)
        framed = frame(payload)
        if deadline is None and cancel is None:
            self.sock.sendall(framed)
            return
        view = memoryview(framed)
        while view:
            try:
                view = view[self.sock.send(view, socket.MSG_DONTWAIT) :]
            except BlockingIOError:
                self._wait(select.POLLOUT, deadline, cancel)
            except (ConnectionResetError, BrokenPipeError):
                raise _worker_gone() from None

    def send_raw(self, payload: bytes, before: bytes = b"") -> None:
        """Send an encoded payload as one frame; `before` (already framed) goes in the same write."""
        self.sock.sendall(before + frame(payload))

    def send_framed(self, data: bytes) -> None:
        """Send frames made with `frame()` as they are."""
        self.sock.sendall(data)

    def recv(self, deadline: float | None = None, cancel=None):
        """Next message. Raises ChannelTimeout, ChannelCancelled, ChannelClosed, ProtocolError."""
        return decode(self.recv_frame(deadline, cancel))

    def recv_frame(self, deadline: float | None = None, cancel=None) -> bytes | memoryview:
        """The next message still encoded (for a caller that keeps the bytes)."""
        while True:
            frame = self._take_frame()
            if frame is not None:
                return frame
            chunk = self._read(deadline, cancel)
            if not self._buf and len(chunk) >= 4:
                # the common case, one whole frame in one read: no copy into the buffer
                (n,) = _HDR.unpack_from(chunk, 0)
                if n > self.max_frame:
                    raise ProtocolError(f"peer sent a {n}-byte message; the limit is {self.max_frame} bytes")
                if len(chunk) == 4 + n:
                    return memoryview(chunk)[4:]
            self._buf += chunk

    def _take_frame(self) -> bytes | None:
        buf = self._buf
        if len(buf) < 4:
            return None
        (n,) = _HDR.unpack_from(buf, 0)
        if n > self.max_frame:
            raise ProtocolError(f"peer sent a {n}-byte message; the limit is {self.max_frame} bytes")
        if len(buf) < 4 + n:
            return None
        frame = bytes(buf[4 : 4 + n])
        del buf[: 4 + n]
        return frame

    def _wait(self, event: int, deadline: float | None, cancel) -> None:
        """Block until the socket is ready for `event` (or errored/hung up)."""
        poller = self._pollers.get(event)
        if poller is None:
            poller = self._pollers[event] = select.poll()
            poller.register(self.sock.fileno(), event | select.POLLERR | select.POLLHUP)
        while True:
            if cancel is not None and cancel.is_set():
                raise ChannelCancelled()
            wait = self.poll_slice_s
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout()
                wait = min(wait, left)
            if poller.poll(wait * 1000.0):
                return

    def _read(self, deadline: float | None, cancel) -> bytes:
        if deadline is not None or cancel is not None:
            self._wait(select.POLLIN, deadline, cancel)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            raise _worker_gone()
        return chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
