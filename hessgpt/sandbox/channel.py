"""Length-prefixed JSON messages, with file descriptors attached, over a Unix stream socket: the
control channel between the supervisor and the sandbox's template process."""

from __future__ import annotations

import json
import socket
import struct

_HEADER = struct.Struct("!I")
MAX_MESSAGE = 8 * 1024 * 1024


def send(sock: socket.socket, message: dict, fds: list[int] | tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    header = _HEADER.pack(len(data))
    if fds:
        socket.send_fds(sock, [header], list(fds))
    else:
        sock.sendall(header)
    sock.sendall(data)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise EOFError("control channel closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket, max_fds: int = 0) -> tuple[dict, list[int]]:
    """One message and the descriptors sent with it. Raises EOFError when the peer is gone."""
    header, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, max_fds, socket.MSG_WAITALL)
    if len(header) < _HEADER.size:
        for fd in fds:
            socket.close(fd)
        raise EOFError("control channel closed")
    (size,) = _HEADER.unpack(header)
    if size > MAX_MESSAGE:
        raise EOFError(f"control message of {size} bytes refused")
    return json.loads(_read_exact(sock, size)), fds
