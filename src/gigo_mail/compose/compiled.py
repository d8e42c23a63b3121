"""What a compile produces: fill-ready parts of one issue, the images it carries, its report.

Kept apart from ``compile`` (which loads Markdown, Jinja, MJML and premailer) so that a send
that finds its compile in the cache (``compose.cache``) never imports those.
"""

from __future__ import annotations

import base64
import html as html_lib
from dataclasses import dataclass, field
from pathlib import Path

from gigo_mail.compose.issue import Issue
from gigo_mail.compose.slots import Slot, SlotTemplate, escape_html, public_values, sample_fields, values
from gigo_mail.config import Config

BUILTIN_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def template_search_path(root: Path) -> list[Path]:
    """The newsletter's own templates/ first, then the templates built into gigo-mail."""
    return [root / "templates", BUILTIN_TEMPLATES]


@dataclass(frozen=True)
class InlineImage:
    """A local image of the issue: carried inside the message (multipart/related, by
    Content-ID), or, with ``images = "link"``, expected online at ``url``."""

    cid: str
    filename: str
    content_type: str
    data: bytes
    url: str = ""

    @property
    def embedded(self) -> bool:
        return not self.url

    @property
    def reference(self) -> str:
        """What the HTML's src says (HTML-escaped)."""
        return html_lib.escape(self.url) if self.url else f"cid:{self.cid}"

    def data_uri(self) -> str:
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass
class BuildReport:
    html_bytes: int = 0
    text_bytes: int = 0
    compile_ms: float = 0.0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)  # how local images travel; sizes not known
    cached: bool = False  # loaded from .gigo/compiled (compose.cache); compile_ms is then the load


@dataclass
class CompiledIssue:
    issue: Issue
    config: Config
    slots: tuple[Slot, ...]
    subject: SlotTemplate
    html: SlotTemplate
    text: SlotTemplate
    images: tuple[InlineImage, ...]
    report: BuildReport
    preheader: SlotTemplate = field(default_factory=lambda: SlotTemplate(""))
    # The body alone (Markdown -> HTML, relative images as written): what the web page shows.
    body_html: SlotTemplate = field(default_factory=lambda: SlotTemplate(""))
    # The first sendable row of the configured list ([list] path), for previews; None: sample values.
    sample: dict[str, str] | None = None

    @property
    def required_columns(self) -> frozenset[str]:
        """CSV columns the templates read (besides email and name)."""
        return frozenset(s.path[1] for s in self.slots
                         if s.path[0] == "subscriber" and len(s.path) > 1
                         and s.path[1] not in ("email", "name"))

    def values(self, fields: dict[str, str], name: str, email: str, unsubscribe_url: str) -> list[str]:
        """The raw (unescaped) value of every slot for one subscriber."""
        return values(self.slots, fields, name, email, unsubscribe_url)

    def sample_values(self) -> list[str]:
        """Values for previews: the configured list's first sendable row (a column it lacks is
        empty, as for that subscriber), else made-up sample values."""
        if self.sample is not None:
            fields = {**dict.fromkeys(self.required_columns, ""), **self.sample}
        else:
            fields = sample_fields(self.required_columns)
        pattern = self.config.newsletter.unsubscribe_url or "#unsubscribe"
        url = pattern.replace("{token}", "preview-token").replace("{email}", fields["email"])
        return self.values(fields, fields["name"], fields["email"], url)

    def public_values(self) -> list[str]:
        """The values of the issue's public web page: defaults and a neutral word, no subscriber."""
        return public_values(self.slots)

    def preview_html(self) -> str:
        """The HTML part with sample values and local images inlined, for a browser."""
        out = self.html.fill(escape_html(self.sample_values()))
        for image in self.images:  # linked ones too: they may not be uploaded yet
            out = out.replace(f'src="{image.reference}"', f'src="{image.data_uri()}"')
        return out

    def preview_text(self) -> str:
        return self.text.fill(self.sample_values())

    def preview_subject(self) -> str:
        return self.subject.fill(self.sample_values())


def build_dir(compiled: CompiledIssue) -> Path:
    return compiled.config.root / "build" / compiled.issue.key
