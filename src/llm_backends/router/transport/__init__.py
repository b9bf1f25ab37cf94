"""The router's HTTP/1.1 client for backend calls: a keep-alive pool over httptools.

aiohttp stays for everything off the request path (health probes, the Admin API lookups, the
change feed); generation and embedding calls go through this (see `pool` for why).
"""

from llm_backends.router.transport.errors import (
    ConnectError,
    InvalidURL,
    ProtocolError,
    ServerDisconnected,
    TransportError,
)
from llm_backends.router.transport.pool import HttpPool, Response

__all__ = [
    "ConnectError",
    "HttpPool",
    "InvalidURL",
    "ProtocolError",
    "Response",
    "ServerDisconnected",
    "TransportError",
]
