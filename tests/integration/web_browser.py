"""What the browser tests share: Debian's Chromium driven by Playwright (no browser download
exists here), axe-core injected from the npm package fetched by the prerequisites step, a
guard that fails a test when a page asks for anything outside 127.0.0.1 or breaks its CSP, and
screenshots at desktop and phone width under var/screenshots/."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.integration.system import ROOT

CHROMIUM = os.environ.get("ESPACE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
AXE_VERSION = "4.10.3"
CACHE = Path(os.environ.get("ESPACE_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "espace"))
AXE_FILE = CACHE / "axe" / f"axe-core-{AXE_VERSION}.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_source() -> str:
    if not AXE_FILE.exists():
        raise AssertionError(f"{AXE_FILE} is missing: run `make setup` (deploy/local/prerequisites.sh fetches it)")
    return AXE_FILE.read_text(encoding="utf-8")


@dataclass
class Guard:
    """Requests that left 127.0.0.1 (aborted) and console errors (CSP violations among them)."""

    outside: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def attach(self, context) -> None:
        def route(r) -> None:
            url = r.request.url
            host = urlsplit(url).hostname
            if url.startswith(("data:", "blob:", "about:")) or host == "127.0.0.1":
                r.continue_()
            else:
                self.outside.append(url)
                r.abort()

        context.route("**/*", route)

    def watch(self, page) -> None:
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)

    def check(self) -> None:
        assert self.outside == [], f"pages asked for resources outside 127.0.0.1: {self.outside}"
        csp = [e for e in self.console_errors if "Content Security Policy" in e]
        assert csp == [], f"CSP violations: {csp}"


class Pages:
    """Checks every page it is shown: axe-core (WCAG 2.1 A and AA rules, 0 violations), then a
    screenshot at desktop width and one at phone width."""

    def __init__(self, axe: str) -> None:
        self.axe = axe
        self.checked: list[str] = []

    def check(self, page, name: str) -> None:
        page.wait_for_load_state("load")
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            # evaluate, not a <script> tag: the page's CSP rightly refuses inline scripts.
            page.evaluate(self.axe)
        result = page.evaluate(
            "async (tags) => { const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});"
            " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }",
            WCAG_TAGS,
        )
        assert result == [], f"axe-core on {name} ({page.url}): {result}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^a-z0-9\-]+", "-", name.lower())
        size = page.viewport_size or DESKTOP
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=str(SCREENSHOTS / f"{safe}-desktop.png"), full_page=True)
        page.set_viewport_size(PHONE)
        # Phone width: nothing wider than the screen (WCAG 1.4.10 reflow).
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} scrolls sideways at {PHONE['width']} px ({overflow} px too wide)"
        page.screenshot(path=str(SCREENSHOTS / f"{safe}-phone.png"), full_page=True)
        page.set_viewport_size(size)
        self.checked.append(name)
