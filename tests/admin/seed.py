"""Pull the Admin API curl examples out of the seed guide, in order."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

_BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)
ADMIN = "http://localhost:8080/api/"


@dataclass(frozen=True)
class Example:
    section: str
    script: str  # a bash snippet: one curl command (possibly piped to jq) or a for loop

    @property
    def summary(self) -> str:
        method = re.search(r"-X (\w+)", self.script)
        url = re.search(r"http://localhost:8080(\S*)", self.script)
        loop = "for-loop " if self.script.startswith("for ") else ""
        return f"{loop}{method.group(1) if method else 'GET'} {url.group(1) if url else '?'}"


def _complete(command: str) -> bool:
    """Whether the quotes of a (partial) shell command are balanced."""
    try:
        shlex.split(command, comments=True)
    except ValueError:
        return False
    return True


def _commands(block: str) -> list[str]:
    """Split a bash block into whole commands: continuations, multi-line quoted bodies and
    `for ... done` loops each stay in one piece."""
    commands: list[str] = []
    current: list[str] = []
    for line in block.replace("\\\n", " ").splitlines():
        if not current and (not line.strip() or line.strip().startswith("#")):
            continue
        current.append(line)
        text = "\n".join(current)
        in_loop = text.lstrip().startswith("for ") and line.strip() != "done"
        if _complete(text) and not in_loop:
            commands.append(text.strip())
            current = []
    return commands


def admin_examples(guide: Path) -> list[Example]:
    text = guide.read_text()
    examples: list[Example] = []
    for match in _BLOCK.finditer(text):
        prose = _BLOCK.sub("", text[: match.start()])
        heading = re.findall(r"^#+ (.+)$", prose, re.MULTILINE)
        for command in _commands(match.group(1)):
            if "curl" in command and ADMIN in command and "$(kubectl" not in command:
                examples.append(Example(section=heading[-1] if heading else "", script=command))
    return examples
