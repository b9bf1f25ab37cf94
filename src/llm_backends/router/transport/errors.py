"""What the transport raises; `router.backends._http.transport_error` maps each to a
router error."""

from __future__ import annotations


class TransportError(Exception):
    """The request did not get a whole HTTP answer."""


class InvalidURL(TransportError, ValueError):
    """The endpoint URL is not an http(s) URL with a host."""


class ConnectError(TransportError):
    """No connection could be made; `os_error` says why (refused, no route, DNS)."""

    def __init__(self, host: str, port: int, os_error: OSError) -> None:
        reason = os_error.strerror or str(os_error) or type(os_error).__name__
        super().__init__(f"cannot connect to {host}:{port}: {reason}")
        self.os_error = os_error


class ServerDisconnected(TransportError):
    """The server closed the connection before its answer was whole."""

    def __init__(self, in_body: bool, detail: str = "") -> None:
        where = "in the middle of the body" if in_body else "before answering"
        super().__init__(
            f"server closed the connection {where}" + (f" ({detail})" if detail else "")
        )
        #: The status and headers had arrived: a body cut short, not a refused request.
        self.in_body = in_body


class ProtocolError(TransportError):
    """The server's bytes are not HTTP/1.1."""
