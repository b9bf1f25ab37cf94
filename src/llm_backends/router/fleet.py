"""Several servers per model: which one takes a request, and how many it may take at once.

Selection is weighted least-outstanding-requests among the servers that are healthy (probes),
whose breaker is not open and that have room: the server with the fewest requests in flight
per unit of weight wins, ties go by smooth weighted round robin (nginx's), so weights hold at
one client as at 32 and a slower server, whose requests stay in flight longer, gets fewer.
With conversation affinity on, a conversation's own server (rendezvous hashing, see
affinity.py) wins while it is within its bounded load.

A `max_concurrency` turns a server's slot into a bounded first-come queue: beyond the limit a
request waits (at most QUEUE_TIMEOUT_SECONDS, at most `queue_max` of them) unless another
server of the model has room. A waiter whose caller is cancelled (its client left) leaves
the queue at once.

The per-(model, server) state lives in the FleetBoard, not in routes: routes are rebuilt on
every config fetch, counters and queues must survive that.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from llm_backends.router import affinity
from llm_backends.router.breaker import OPEN, BreakerBoard, CircuitBreaker
from llm_backends.router.errors import LLMRouterError, ServerBusy
from llm_backends.router.fallback import Attempt, Route
from llm_backends.router.health import HealthMonitor, ServerHealth
from llm_backends.router.types import BackendConfig, CompletionRequest

#: The model key of the default servers' slots: shared by every model without a config, so
#: model names clients make up never add state.
DEFAULT_SLOT = ""
#: The longest fallback chain: the models tried after a config's own servers all failed.
MAX_FALLBACKS = 5


class ServerSlot:
    """One server's requests in flight for one model, and its queue when it has a limit."""

    __slots__ = ("current", "hash", "health", "in_flight", "limit", "queue_max", "waiters")

    def __init__(self, health: ServerHealth, queue_max: int) -> None:
        self.health = health
        self.hash = affinity.stable_hash(health.url)
        self.limit: int | None = None
        self.queue_max = queue_max
        self.in_flight = 0
        self.waiters: deque[asyncio.Future[None]] = deque()
        #: Smooth weighted round robin's running weight.
        self.current = 0

    @property
    def url(self) -> str:
        return self.health.url

    def has_room(self) -> bool:
        """Below its limit, and nobody queued before us (first come, first served)."""
        limit = self.limit
        return limit is None or (self.in_flight < limit and not self.waiters)

    async def acquire(self, wait: float, busy: Callable[[str], LLMRouterError]) -> None:
        """Take a place, waiting in the queue up to `wait` seconds; raises `error` (429) if not."""
        if self.has_room():
            self.in_flight += 1
            return
        if len(self.waiters) >= self.queue_max:
            raise busy(f"{self.url} is at max_concurrency={self.limit} and its queue is full")
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            async with asyncio.timeout(wait):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as we gave up: pass the place on
            else:
                waiter.cancel()
                self.waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise busy(
                    f"{self.url} is at max_concurrency={self.limit}: "
                    f"no place freed within {wait:g}s"
                ) from None
            raise

    def release(self) -> None:
        """Hand the place to the first live waiter, else free it."""
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.in_flight -= 1


@dataclass(frozen=True, slots=True)
class Member:
    """One server of a route: its slot, its breaker, and the call that reaches it."""

    slot: ServerSlot
    weight: int
    attempt: Attempt
    breaker: CircuitBreaker

    def with_timeout(self, seconds: float) -> Attempt:
        """The attempt bounded by what is left of the request's overall deadline."""
        config = replace(self.attempt.config, timeout_seconds=seconds)
        return Attempt(self.attempt.kind, config)


class Fleet:
    """The servers of one route and the choice among them."""

    __slots__ = ("affinity", "discover", "members")

    def __init__(self, members: tuple[Member, ...], *, affinity: bool, discover: bool) -> None:
        self.members = members
        self.affinity = affinity and len(members) > 1
        #: Default servers: only those whose probes list the model are candidates.
        self.discover = discover

    def candidates(self, model: str, tried: set[str]) -> list[Member]:
        """Healthy, breaker not open, not tried yet (and serving the model, for discovery)."""
        found = []
        for member in self.members:
            health = member.slot.health
            if member.slot.url in tried or not health.healthy:
                continue
            if member.breaker.state == OPEN:
                continue
            if self.discover and not health.serves(model):
                continue
            found.append(member)
        return found

    def pick(self, candidates: list[Member], key: int | None) -> Member:
        """The member to try (it may have to queue when none has room)."""
        roomy = [m for m in candidates if m.slot.has_room()]
        if not roomy:
            return min(candidates, key=lambda m: len(m.slot.waiters) / m.weight)
        if key is not None and len(roomy) > 1:
            chosen = _affine(roomy, key)
            if chosen is not None:
                return chosen
        return _least_outstanding(roomy)


def _affine(members: list[Member], key: int) -> Member | None:
    total = sum(m.slot.in_flight for m in members)
    weight = sum(m.weight for m in members)
    ranked = affinity.order(key, [m.slot.hash for m in members], [m.weight for m in members])
    for index in ranked:
        member = members[index]
        if affinity.within_bound(member.slot.in_flight, member.weight, total, weight):
            return member
    return None


def _least_outstanding(members: list[Member]) -> Member:
    """Least in flight per weight; ties by smooth weighted round robin."""
    best = members[0]
    tied = [best]
    for member in members[1:]:
        # in_flight/weight compared without division.
        left = member.slot.in_flight * best.weight
        right = best.slot.in_flight * member.weight
        if left < right:
            best, tied = member, [member]
        elif left == right:
            tied.append(member)
    if len(tied) == 1:
        return best
    total = 0
    chosen = tied[0]
    for member in tied:
        member.slot.current += member.weight
        total += member.weight
        if member.slot.current > chosen.slot.current:
            chosen = member
    chosen.slot.current -= total
    return chosen


class FleetBoard:
    """Slots per (model, server), the health monitor, and fleets for the routes that need one."""

    def __init__(
        self,
        monitor: HealthMonitor,
        breakers: BreakerBoard,
        *,
        queue_max: int,
        queue_timeout: float,
        affinity: bool,
    ) -> None:
        self.monitor = monitor
        self._breakers = breakers
        self.queue_max = queue_max
        self.queue_timeout = queue_timeout
        self.affinity = affinity
        self._slots: dict[tuple[str, str], ServerSlot] = {}

    def slot(self, model: str, url: str, kind: str) -> ServerSlot:
        key = (model, url)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = ServerSlot(self.monitor.track(url, kind), self.queue_max)
        return slot

    def slots(self) -> dict[tuple[str, str], ServerSlot]:
        """(model, url) -> slot: the slots of the configured models and the default servers.

        Bounded by the configs (one key per model and server); models without a config share
        the DEFAULT_SLOT key."""
        return dict(self._slots)

    def in_flight(self, model: str, url: str) -> int:
        slot = self._slots.get((model, url))
        return slot.in_flight if slot is not None else 0

    def equip(self, route: Route) -> Route:
        """The route with a Fleet when it needs one: several servers, a limit, fallbacks,
        or several default servers to discover the model on. A one-server config without
        limit or fallbacks stays a plain route (the single-server path is unchanged)."""
        config = route.config
        for attempt in route.attempts:
            self.monitor.track(attempt.endpoint, attempt.kind)
        if route.is_default:
            if len(self.monitor.defaults) < 2:
                return route
            members = self._members(DEFAULT_SLOT, config, self.monitor.defaults, None)
            return replace(route, fleet=Fleet(members, affinity=self.affinity, discover=True))
        servers = config.servers
        needs = len(servers) > 1 or config.max_concurrency is not None or config.fallbacks
        if not needs or len(route.attempts) != 1:  # auto keeps its own two-step route
            return route
        members = tuple(
            self._member(config.model_name, config, s.url, s.weight, s.max_concurrency)
            for s in servers
        )
        return replace(route, fleet=Fleet(members, affinity=self.affinity, discover=False))

    def _members(
        self, model: str, config: BackendConfig, urls: Iterable[str], limit: int | None
    ) -> tuple[Member, ...]:
        return tuple(self._member(model, config, url, 1, limit) for url in urls)

    def _member(
        self, model: str, config: BackendConfig, url: str, weight: int, limit: int | None
    ) -> Member:
        slot = self.slot(model, url, config.backend_type)
        slot.limit = limit
        server_config = config if url == config.endpoint_url else replace(config, endpoint_url=url)
        attempt = Attempt(config.backend_type, server_config)
        return Member(slot, weight, attempt, self._breakers.get(url))

    def busy(self, model: str, member: Member) -> Callable[[str], ServerBusy]:
        """Builds the 429 of a request that found no place at `member`."""

        def error(reason: str) -> ServerBusy:
            return ServerBusy(
                reason,
                model=model,
                backend=member.attempt.kind,
                endpoint=member.slot.url,
                status_code=429,
                retry_after=str(max(1, round(self.queue_timeout))),
            )

        return error

    def key_of(self, fleet: Fleet, request: CompletionRequest) -> int | None:
        if not fleet.affinity:
            return None
        return affinity.conversation_key(request, affinity.explicit_key(request))
