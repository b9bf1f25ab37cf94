"""Routing of generate/chat calls to the backend configured per model."""
