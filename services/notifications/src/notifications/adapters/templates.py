"""French e-mail templates (Jinja2). HTML is autoescaped; a template for each kind of e-mail has
three files: `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class Templates:
    def __init__(self) -> None:
        self.env = Environment(
            loader=PackageLoader("notifications", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            # Templates ship with the code: no stat() of each file on every render.
            auto_reload=False,
        )

    def render(self, kind: str, **context: Any) -> RenderedEmail:
        return RenderedEmail(
            subject=self.env.get_template(f"{kind}.subject.txt").render(**context).strip(),
            text=self.env.get_template(f"{kind}.txt").render(**context),
            html=self.env.get_template(f"{kind}.html").render(**context),
        )
