"""mlx_lm.server: the OpenAI protocol, but the server serves exactly one model.

It takes any `model` value other than its served path as a Hugging Face hub id to download:
offline that is a 404, and it unloads the served model meanwhile. So the `model` field is
sent only when the config names the backend model explicitly.
"""

from __future__ import annotations

from llm_backends.router.backends.openai import OpenAIBackend
from llm_backends.router.types import BackendConfig


class MLXBackend(OpenAIBackend):
    """Talks to `mlx_lm.server --model PATH` (default port 8080)."""

    kind = "mlx"
    #: mlx_lm.server serves completions only: the router answers an embedding request with a
    #: 400 naming this backend (an `auto` config asks Ollama instead).
    embeds = False

    def model_field(self, config: BackendConfig) -> str | None:
        return config.backend_model
