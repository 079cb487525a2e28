"""Length-prefixed framing of the VOEvent Transport Protocol.

A packet is a 4-byte big-endian unsigned length followed by that many bytes.
The readers check the length against a limit before reading or allocating
anything, so a peer that announces a 4 GB packet costs nothing; since the
stream cannot be resynchronized after a bad length, that is a
:class:`FramingError` and the connection must be closed.

:func:`recv_packet` reads from a blocking socket (it replaces pygcn's reader
in the GCN listener); :func:`read_packet` reads from an
:class:`asyncio.StreamReader` (the broadcaster).
"""
import asyncio
import socket
import struct
import time

from .parsing import MAX_PACKET_SIZE

__all__ = ('FramingError', 'frame', 'recv_packet', 'read_packet')

_HEADER = struct.Struct('!I')


class FramingError(ConnectionError):
    """The peer broke the framing (length over the limit, or the stream ended
    inside a packet); the connection is unusable.

    A :class:`ConnectionError` (hence :class:`OSError`), so code that already
    treats socket errors as "reconnect" does the right thing.
    """


def frame(payload):
    """Prefix a payload with its length."""
    return _HEADER.pack(len(payload)) + bytes(payload)


def _check_length(length, max_size):
    if length > max_size:
        raise FramingError(
            f'peer announced a packet of {length} bytes, over the limit of '
            f'{max_size} bytes; closing the connection')


def _recv_exactly(sock, n, deadline):
    buf = bytearray(n)
    view = memoryview(buf)
    while view:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout(f'timed out reading {n} bytes')
            sock.settimeout(remaining)
        received = sock.recv_into(view)
        if received == 0:
            raise FramingError('connection closed by peer')
        view = view[received:]
    return bytes(buf)


def recv_packet(sock, max_size=MAX_PACKET_SIZE):
    """Read one packet from a blocking socket.

    The socket's timeout bounds the wait for the header and, separately, for
    the whole payload.

    Raises
    ------
    FramingError
        On a length over ``max_size`` or a stream that ends early.
    socket.timeout
        If the socket's timeout passes.
    """
    timeout = sock.gettimeout()
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        length, = _HEADER.unpack(_recv_exactly(sock, _HEADER.size, deadline))
        _check_length(length, max_size)
        deadline = None if timeout is None else time.monotonic() + timeout
        return _recv_exactly(sock, length, deadline)
    finally:
        sock.settimeout(timeout)


async def read_packet(reader, max_size=MAX_PACKET_SIZE):
    """Read one packet from an :class:`asyncio.StreamReader`.

    Returns
    -------
    bytes or None
        The payload, or ``None`` if the stream ended cleanly between packets.

    Raises
    ------
    FramingError
        On a length over ``max_size`` or a stream that ends inside a packet.
    """
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise FramingError('connection closed inside a packet header') from None
    length, = _HEADER.unpack(header)
    _check_length(length, max_size)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as e:
        raise FramingError(
            f'connection closed after {len(e.partial)} of {length} bytes '
            'of a packet') from None
