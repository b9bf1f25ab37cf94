"""What each backend type can honour, and the check that refuses what it cannot.

Never a silent drop: a request needing a feature its backend would ignore is a 400 naming the
field and the backend. For `auto`, an attempt that cannot honour the request is skipped, so a
request needing what MLX lacks goes straight to Ollama. Only rich requests are checked: the
plain-text path does not come here.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm_backends.router.errors import BackendRequestError
from llm_backends.router.fallback import Attempt
from llm_backends.router.messages import is_remote
from llm_backends.router.types import CompletionRequest

# Capability names; a backend class lists the ones it has in `capabilities`.
TOOLS = "tools"
#: tool_choice "required", which only a server with tool choice can force (a named choice is
#: honoured everywhere: a backend without tool choice is offered only that tool).
FORCED_TOOL_CHOICE = "forced_tool_choice"
RESPONSE_FORMAT = "response_format"
IMAGES = "images"
#: http(s) image URLs, which the backend fetches itself (the gateway never fetches a URL).
IMAGE_URLS = "image_urls"
#: Images on a prompt (generate / completions), not in chat messages.
PROMPT_IMAGES = "prompt_images"
THINK = "think"
SUFFIX = "suffix"
#: n > 1 in one call; without it the router makes n calls (up to a limit).
N = "n"
LOGPROBS = "logprobs"


def needs(request: CompletionRequest) -> list[tuple[str, str]]:
    """(capability, the request field that needs it) for every feature the request uses."""
    wanted: list[tuple[str, str]] = []
    if request.tools and request.tool_choice != "none":
        wanted.append((TOOLS, "tools"))
        if request.tool_choice == "required":
            wanted.append((FORCED_TOOL_CHOICE, "tool_choice"))
    if request.response_format is not None:
        ollama = request.passthrough is not None and request.passthrough.protocol == "ollama"
        wanted.append((RESPONSE_FORMAT, "format" if ollama else "response_format"))
    images = _images(request)
    if images:
        wanted.append((IMAGES, images[0][0]))
        remote = [field for field, image in images if is_remote(image)]
        if remote:
            wanted.append((IMAGE_URLS, remote[0]))
    if request.images:
        wanted.append((PROMPT_IMAGES, "images"))
    if request.think is not None:
        wanted.append((THINK, "think"))
    if request.suffix:
        wanted.append((SUFFIX, "suffix"))
    if request.logprobs or request.top_logprobs:
        wanted.append((LOGPROBS, "logprobs"))
    return wanted


def _images(request: CompletionRequest) -> list[tuple[str, str]]:
    """(field, image) of every image of the request, prompt and messages alike."""
    found = [(f"images.{i}", image) for i, image in enumerate(request.images)]
    for index, message in enumerate(request.messages or ()):
        for position, image in enumerate(message.get("images", ())):
            found.append((f"messages.{index}.images.{position}", image))
    return found


def refusal(
    model: str, attempt: Attempt, capabilities: frozenset[str], request: CompletionRequest
) -> BackendRequestError | None:
    """The 400 for the first feature this attempt's backend lacks, else None."""
    for capability, field in needs(request):
        if capability not in capabilities:
            return _refuse(model, attempt, field, _WHY[capability])
    return None


def fanout_refusal(
    model: str,
    attempt: Attempt,
    capabilities: frozenset[str],
    request: CompletionRequest,
    limit: int,
    stream: bool,
) -> BackendRequestError | None:
    """n > 1 to a backend without `n` is n calls (or n streams): up to `limit`."""
    if request.n <= 1 or N in capabilities:
        return None
    if request.n > limit:
        return _refuse(
            model, attempt, "n", f"ignores n, and n > {limit} (MAX_FANOUT_CALLS) calls are not made"
        )
    return None


def capable_attempts(
    model: str,
    attempts: Sequence[Attempt],
    capabilities_of: dict[str, frozenset[str]],
    request: CompletionRequest,
    *,
    limit: int,
    stream: bool,
) -> tuple[Attempt, ...]:
    """The attempts able to honour `request`; if none is, raise the first one's refusal."""
    able: list[Attempt] = []
    first: BackendRequestError | None = None
    for attempt in attempts:
        capabilities = capabilities_of.get(attempt.kind, frozenset())
        error = refusal(model, attempt, capabilities, request) or fanout_refusal(
            model, attempt, capabilities, request, limit, stream
        )
        if error is None:
            able.append(attempt)
        elif first is None:
            first = error
    if not able:
        assert first is not None
        raise first
    return tuple(able)


_WHY = {
    TOOLS: "does not take tools",
    FORCED_TOOL_CHOICE: "cannot force a tool choice (only 'auto' or 'none')",
    RESPONSE_FORMAT: "does not take structured output (it would ignore it)",
    IMAGES: "does not take images",
    IMAGE_URLS: "does not fetch image URLs (send the image as base64 data)",
    PROMPT_IMAGES: "takes images only in chat messages, not with a prompt",
    THINK: "does not take reasoning options",
    SUFFIX: "does not take a suffix (fill-in-the-middle)",
    LOGPROBS: "does not return logprobs",
}


def _refuse(model: str, attempt: Attempt, field: str, why: str) -> BackendRequestError:
    error = BackendRequestError(
        f"{field}: the {attempt.kind} backend {why}",
        model=model,
        backend=attempt.kind,
        endpoint=attempt.endpoint,
        status_code=400,
    )
    error.param = field  # type: ignore[attr-defined]  # OpenAI's `param`, for the gateway
    return error
