"""The admin web page (`/ui/`): static assets shipped in the package, plus the per-minute
traffic history its charts draw. No build step: plain HTML, CSS and JavaScript modules."""

from llm_backends.ui.routes import install_ui
from llm_backends.ui.timeseries import ConfiguredModels, Timeseries

__all__ = ["ConfiguredModels", "Timeseries", "install_ui"]
