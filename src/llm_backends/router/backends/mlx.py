"""mlx_lm.server: the OpenAI protocol, but the server serves exactly one model.

It takes any `model` value other than its served path as a Hugging Face hub id to download:
offline that is a 404, and it unloads the served model meanwhile. So the `model` field is
sent only when the config names the backend model explicitly.

What it would silently ignore is refused instead (see `capabilities`): `response_format`,
`tool_choice` other than auto/none, `n` (served as n calls), images (a text model's server
errors on them), `suffix`. Reasoning is switched with `chat_template_kwargs.enable_thinking`.
"""

from __future__ import annotations

from typing import ClassVar

from llm_backends.router import capabilities as cap
from llm_backends.router.backends.openai import OpenAIBackend
from llm_backends.router.types import BackendConfig


class MLXBackend(OpenAIBackend):
    """Talks to `mlx_lm.server --model PATH` (default port 8080)."""

    kind = "mlx"
    capabilities: ClassVar[frozenset[str]] = frozenset({cap.TOOLS, cap.THINK, cap.LOGPROBS})
    think_as: ClassVar[str] = "chat_template_kwargs"
    forwards: ClassVar[bool] = False

    def model_field(self, config: BackendConfig) -> str | None:
        return config.backend_model
