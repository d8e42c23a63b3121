"""Client compatibility: which HTML and CSS features the compiled email uses, scored per
client family against the caniemail data shipped in ``data/caniemail`` (MIT, dated there).

A feature's support in a family is its latest tested version on each platform
(Outlook on Windows, Outlook.com, ...): "y" counts 1, "a" (partial) 0.5, "n" 0, and
unknown is left out. A family's score is the mean over the features the email uses.
Email is built to degrade (Outlook for Windows ignores @media on purpose), so a
missing feature is a warning with the line it is used on, never a failure.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from lxml import html as lxml_html

from gigo_mail.check.report import Finding
from gigo_mail.compose.compiled import CompiledIssue

FAMILIES = {"gmail": "Gmail", "apple-mail": "Apple Mail", "outlook": "Outlook", "yahoo": "Yahoo",
            "samsung-email": "Samsung Email"}
SCORES = {"y": 1.0, "a": 0.5, "n": 0.0}
SHOWN = 8  # lacking features listed per family

_DECLARATION = re.compile(r"([a-zA-Z-]+)\s*:\s*([^;{}]+)")
_AT_RULE = re.compile(r"@([a-z-]+)")
_PSEUDO = re.compile(r"(?<!:)(::?)([a-z-]+)")
_BLOCK = re.compile(r"\{[^{}]*\}")
_CSS_FUNCTIONS = {"linear-gradient": "css-linear-gradient", "radial-gradient": "css-radial-gradient",
                  "conic-gradient": "css-conic-gradient", "rgba": "css-rgba", "rgb": "css-rgb",
                  "calc": "css-unit-calc", "var": "css-variables", "min": "css-function-min",
                  "max": "css-function-max", "clamp": "css-function-clamp",
                  "light-dark": "css-function-light-dark"}
_ATTRIBUTES = {"align": "html-align", "valign": "html-valign", "width": "html-width", "height": "html-height",
               "background": "html-background", "cellpadding": "html-cellpadding",
               "cellspacing": "html-cellspacing", "lang": "html-lang", "dir": "html-dir", "role": "html-role",
               "srcset": "html-srcset", "loading": "html-loading-attribute", "hidden": "html-hidden",
               "target": "html-target", "aria-hidden": "html-aria-hidden", "aria-label": "html-aria-label",
               "aria-labelledby": "html-aria-labelledby", "aria-describedby": "html-aria-describedby",
               "aria-live": "html-aria-live"}
_COLOR_SCHEME_META = ("color-scheme", "supported-color-schemes")
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}


@dataclass(frozen=True)
class CaniemailData:
    version: str
    updated: str
    features: dict[str, dict[str, Any]]  # slug -> feature


@cache
def caniemail() -> CaniemailData:
    """The shipped data file, read once."""
    text = resources.files("gigo_mail").joinpath("data/caniemail/caniemail.json").read_text(encoding="utf-8")
    data = json.loads(text)
    return CaniemailData(data["api_version"], data["last_update_date"][:10],
                         {feature["slug"]: feature for feature in data["data"]})


def _css_features(css: str, line: int, slugs: dict[str, int], known: dict[str, Any],
                  sheet: bool = False) -> None:
    """Record the CSS features in ``css`` (a style attribute, or a <style> block when ``sheet``)
    starting at ``line``."""
    def add(slug: str, offset: int) -> None:
        if slug in known:
            slugs.setdefault(slug, line + css.count("\n", 0, offset))

    for match in _AT_RULE.finditer(css):
        rule = match.group(1)
        add("css-at-media" if rule == "media" else f"css-at-{rule}", match.start())
        if rule == "media":
            condition = css[match.end():css.find("{", match.end())]
            for feature in ("prefers-color-scheme", "prefers-reduced-motion", "orientation", "hover"):
                if feature in condition:
                    add(f"css-at-media-{feature}", match.start())
    for match in _DECLARATION.finditer(css):
        name, value = match.group(1).lower(), match.group(2).strip().lower()
        if name.startswith("--"):
            add("css-variables", match.start())
            continue
        display = {"flex": "css-display-flex", "grid": "css-display-grid", "none": "css-display-none"}
        if name == "display" and value.split()[0] in display:
            add(display[value.split()[0]], match.start())
        add(f"css-{name}", match.start())
        if "!important" in value:
            add("css-important", match.start())
        for function, slug in _CSS_FUNCTIONS.items():
            if f"{function}(" in value:
                add(slug, match.start())
    if not sheet:
        return
    selectors = _BLOCK.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), css)  # blank out the declarations
    for match in _PSEUDO.finditer(selectors):
        kind = "element" if match.group(1) == "::" else "class"
        add(f"css-pseudo-{kind}-{match.group(2)}", match.start())


def used_features(html: str) -> dict[str, int]:
    """caniemail slug -> the first line of the HTML that uses it."""
    known = caniemail().features
    slugs: dict[str, int] = {}
    if html.lstrip()[:9].lower() == "<!doctype":
        slugs["html-doctype"] = 1
    doc = lxml_html.document_fromstring(html)
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue  # comments (Outlook's conditional ones are meant for it)
        line = element.sourceline or 0
        tag = element.tag.lower()
        slug = "html-h1-h6" if tag in _HEADINGS else "html-lists" if tag in ("ul", "ol") else f"html-{tag}"
        if slug in known:
            slugs.setdefault(slug, line)
        if tag == "a":
            href = element.get("href", "")
            if href.startswith("#"):
                slugs.setdefault("html-anchor-links", line)
            elif href.lower().startswith("mailto:"):
                slugs.setdefault("html-mailto-links", line)
        if tag == "meta" and (element.get("name") or "").lower() in _COLOR_SCHEME_META:
            slugs.setdefault("html-meta-color-scheme", line)
        for attribute in element.attrib:
            if attribute in _ATTRIBUTES:
                slugs.setdefault(_ATTRIBUTES[attribute], line)
        if tag == "style":
            _css_features(element.text or "", line, slugs, known, sheet=True)
        elif element.get("style"):
            _css_features(element.get("style", ""), line, slugs, known)
    return slugs


def _support(feature: dict[str, Any], family: str) -> list[tuple[str, str]]:
    """(platform, y/a/n/u) of the latest tested version on each of the family's platforms."""
    platforms = feature.get("stats", {}).get(family, {})
    return [(platform, list(versions.values())[-1][:1])
            for platform, versions in platforms.items() if versions]


def family_scores(slugs: dict[str, int]) -> dict[str, tuple[float, list[tuple[str, list[str], int]]]]:
    """family -> (score 0..1, [(feature title, platforms lacking it, line)])."""
    data = caniemail()
    platform_names = {"desktop-webmail": "webmail", "mobile-webmail": "mobile webmail",
                      "outlook-com": "Outlook.com", "windows-mail": "Windows Mail", "ios": "iOS",
                      "android": "Android", "macos": "macOS", "windows": "Windows"}
    out = {}
    for family in FAMILIES:
        points: list[float] = []
        lacking = []
        for slug, line in sorted(slugs.items(), key=lambda item: item[1]):
            support = [(p, s) for p, s in _support(data.features[slug], family) if s in SCORES]
            if not support:
                continue
            points.append(sum(SCORES[s] for _, s in support) / len(support))
            missing = [platform_names.get(p, p) for p, s in support if s == "n"]
            if missing:
                lacking.append((data.features[slug]["title"], missing, line))
        out[family] = (sum(points) / len(points) if points else 1.0, lacking)
    return out


def check_compat(compiled: CompiledIssue) -> list[Finding]:
    data = caniemail()
    findings = []
    for family, (score, lacking) in family_scores(used_features(compiled.html.source)).items():
        subject = f"{FAMILIES[family]} {score:.0%}"
        if not lacking:
            findings.append(Finding.ok("compat", subject, "supports every feature the email uses"))
            continue
        shown = "; ".join(f"{title} (line {line}; {', '.join(platforms)})"
                          for title, platforms, line in lacking[:SHOWN])
        more = f"; and {len(lacking) - SHOWN} more" if len(lacking) > SHOWN else ""
        findings.append(Finding.warn("compat", subject, f"lacks {shown}{more}"))
    findings.append(Finding.ok("compat", "data", f"caniemail {data.version}, updated {data.updated} (MIT); "
                                                 f"lines are those of build/{compiled.issue.key}/email.html"))
    return findings
