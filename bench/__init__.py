"""Benchmarks of llm-backends against direct calls and LiteLLM proxy (`make bench`, `make soak`).

Nothing here is imported by the package or by `make test`.
"""
