"""Compatibility import path of the seed's examples: `from shared.llm_router import get_llm_router`.

A thin alias of the real API (`from llm_backends import get_llm_router` is canonical). `shared`
is a namespace package: other distributions may ship their own `shared.*` modules beside this.
"""

from llm_backends import *  # noqa: F403
from llm_backends import __all__  # noqa: F401
