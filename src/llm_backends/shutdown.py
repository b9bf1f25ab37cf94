"""A server process's shutdown state: what the signal handler, `/ready` and open streams share.

Shutting down has three moments, all counted from the first signal (see serving/server.py):
draining starts at once (`/ready` answers 503 so load balancers stop sending), the listener
closes after the lame-duck delay (none on SIGINT), and at the grace deadline every request
still running is cancelled with `SHUTDOWN_CUT` as the message. A stream recognises that
message and ends with its protocol's error event instead of being cut mid-way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

#: The cancel message of a request cut at the grace deadline.
SHUTDOWN_CUT = "llm-backends: shutdown grace period over"


@dataclass
class Drain:
    """One process's drain state; lives on `app.state.drain`, set by the server's signal
    handling. A plain flag, read by `/ready` on every probe: nothing on the request path."""

    draining: bool = False

    def begin(self) -> None:
        self.draining = True


def is_shutdown_cut(error: asyncio.CancelledError) -> bool:
    """Whether this cancellation is the grace deadline's, not a client leaving or a bug."""
    return bool(error.args) and error.args[0] == SHUTDOWN_CUT
