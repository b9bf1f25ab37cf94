"""The admin page in a real headless Chromium (Debian's `chromium`, driven by Playwright),
against a real server process and fake inference servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.operator_fixtures import default_ollama, fake_backend, server

CHROMIUM = Path("/usr/bin/chromium")
#: Screenshots of each main view (gitignored); the best are copied to docs/screenshots/.
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"

__all__ = ["default_ollama", "fake_backend", "server"]  # fixtures, for the tests here


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs it (apt-get install chromium)")
        pytest.skip("no /usr/bin/chromium here: `make test` installs it as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs  # what alert()/confirm() fired: an injection would show here
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    assert errors == [], errors  # no script error on the page
    context.close()


def shoot(page, name: str, part: str | None = None) -> Path:  # type: ignore[no-untyped-def]
    """The whole page, or the element `part` (a selector) alone."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if part is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        page.locator(part).screenshot(path=str(path))
    return path
