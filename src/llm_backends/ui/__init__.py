"""The admin web page (`/ui/`): static assets shipped in the package, plus the route of the
per-minute traffic history its charts draw (kept by gateway/timeseries.py). No build step:
plain HTML, CSS and JavaScript modules."""

from llm_backends.ui.routes import install_ui

__all__ = ["install_ui"]
