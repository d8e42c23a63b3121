"""Jinja2 rendering: strict environments, errors with file and line, slot-aware filters.

Per-subscriber names render as slot tokens (see ``slots``, the slot contract). A few
filters work on them: upper, lower, title, capitalize, trim, urlencode and default.
``{% if subscriber.x %}`` cannot work on a value that is only known per recipient,
so it raises a clear error instead of guessing.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import filters as jinja_filters
from markupsafe import Markup

from gigo_mail.compose.slots import TRANSFORMS, Placeholder
from gigo_mail.errors import TemplateError

_TEMPLATE_SUFFIXES = (".j2", ".mjml", ".txt", ".html", ".md")


def _slot_filter(name: str, builtin: Callable[..., Any]) -> Callable[..., Any]:
    def apply(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, Placeholder):
            return value.derive(transforms=(*value.slot.transforms, name))
        return builtin(value, *args, **kwargs)

    return apply


def _default_filter(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    if isinstance(value, Placeholder):
        return value.derive(default=str(default_value))
    return jinja_filters.do_default(value, default_value, boolean)


def _longdate(value: Any) -> str:
    """2024-02-20 -> 20 February 2024; anything else is shown as written."""
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return f"{day.day} {day:%B %Y}"


def make_environment(search_paths: list[Path], *, autoescape: bool) -> jinja2.Environment:
    """A strict environment: an unknown variable is an error, never an empty string."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in search_paths]),
        undefined=jinja2.StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
    )
    for name in TRANSFORMS:
        env.filters[name] = _slot_filter(name, env.filters[name])
    env.filters["default"] = env.filters["d"] = _default_filter
    env.filters["longdate"] = _longdate
    return env


def shared_environment(search_paths: list[Path], *, autoescape: bool) -> jinja2.Environment:
    """One environment per template folders and escaping for the whole process: each template
    is compiled once, not once per compile (Jinja keeps it, and reloads it when its file changes).
    The files in the folders are part of the key: a template added in front of another (an
    override copied in while a preview runs) is found, not the one compiled before."""
    files = tuple(sorted(str(path) for folder in search_paths if folder.is_dir()
                         for path in folder.rglob("*") if path.is_file()))
    return _environment(tuple(search_paths), autoescape, files)


@functools.lru_cache(maxsize=16)
def _environment(search_paths: tuple[Path, ...], autoescape: bool, files: tuple[str, ...]
                 ) -> jinja2.Environment:
    return make_environment(list(search_paths), autoescape=autoescape)


def _jinja_location(exc: BaseException) -> str:
    """'file:line' of the innermost template frame of a Jinja error, if any."""
    filename = getattr(exc, "filename", None)
    lineno = getattr(exc, "lineno", None)
    if filename and lineno:
        return f"{filename}:{lineno}"
    tb = exc.__traceback__
    found = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.endswith(_TEMPLATE_SUFFIXES) or code.co_filename == "<template>":
            found = f"{code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def render(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    """Render template ``name``; a Jinja failure becomes a TemplateError with file and line."""
    try:
        return env.get_template(name).render(context)
    except TemplateError:
        raise
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template '{exc.name}' not found in {_search_text(env)}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{_jinja_location(exc) or name}: {exc.message or exc}") from exc


def render_string(env: jinja2.Environment, source: str, context: dict[str, Any], origin: str,
                  line_offset: int = 0) -> str:
    """Render inline template text (the Markdown body, the subject); errors name ``origin``."""
    try:
        return env.from_string(source).render(context)
    except TemplateError:
        raise
    except jinja2.TemplateError as exc:
        lineno = getattr(exc, "lineno", None)
        if lineno is None:
            where = _jinja_location(exc)
            lineno = int(where.rsplit(":", 1)[1]) if where.startswith("<template>") else None
        line = f":{lineno + line_offset}" if lineno else ""
        raise TemplateError(f"{origin}{line}: {exc.message or exc}") from exc


def _search_text(env: jinja2.Environment) -> str:
    loader = env.loader
    paths = getattr(loader, "searchpath", [])
    return " or ".join(str(p) for p in paths) or "the template folders"


def markup(html: str) -> Markup:
    """Mark compiled HTML safe for an autoescaping template."""
    return Markup(html)
