"""`llm-backends run MODEL [PROMPT]`: stream an answer through the gateway, or chat."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from llm_backends.cli_commands.client import AdminClient, ClientError, StreamStats
from llm_backends.cli_commands.output import errors, fail

BYE = "/bye"


def _answer(client: AdminClient, model: str, messages: list[dict[str, Any]], verbose: bool) -> str:
    stats = StreamStats()
    pieces: list[str] = []
    for piece in client.stream_chat(model, messages, stats, time.perf_counter):
        pieces.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    if verbose:
        ttft = (
            "—"
            if stats.first_token_seconds is None
            else f"{stats.first_token_seconds * 1000:.0f} ms"
        )
        tps = "—" if stats.tokens_per_second is None else f"{stats.tokens_per_second:.1f}"
        errors.print(
            f"backend: {stats.backend}  first token: {ttft}  "
            f"tokens: {stats.tokens}  tokens/s: {tps}",
            markup=False,
        )
    return "".join(pieces)


def run(
    model: Annotated[str, typer.Argument(help="The model to ask.")],
    prompt: Annotated[
        str | None, typer.Argument(help="Ask this once; without it, chat (type /bye to end).")
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Say who answered, time to first token, tokens/s."),
    ] = False,
) -> None:
    """Stream an answer from MODEL through the gateway, like `ollama run`."""
    with AdminClient.from_settings() as client:
        if prompt is not None:
            try:
                _answer(client, model, [{"role": "user", "content": prompt}], verbose)
            except ClientError as error:
                fail(str(error))
            return
        _chat(client, model, verbose)


def _chat(client: AdminClient, model: str, verbose: bool) -> None:
    """Lines from stdin, one message each; the conversation is kept and sent every turn."""
    messages: list[dict[str, Any]] = []
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            errors.print(">>> ", end="", markup=False)
        line = sys.stdin.readline()
        if not line or line.strip() == BYE:
            return
        text = line.rstrip("\n")
        if not text.strip():
            continue
        messages.append({"role": "user", "content": text})
        try:
            answer = _answer(client, model, messages, verbose)
        except ClientError as error:
            messages.pop()
            errors.print(f"error: {error}", markup=False)
            continue
        messages.append({"role": "assistant", "content": answer})
