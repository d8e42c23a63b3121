"""gigo-mail.toml: the newsletter's identity and sending settings.

The file sits at the newsletter's root (the folder with ``issues/``). An issue's
front matter may override any ``[newsletter]`` value for that issue only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gigo_mail import env
from gigo_mail.config_schema import LANG_HINT, LANG_TAG, position_of, toml_fix, validate
from gigo_mail.errors import ConfigError
from gigo_mail.private import private_dir, tighten
from gigo_mail.signup_config import Signup

CONFIG_NAME = "gigo-mail.toml"
STATE_DIR = ".gigo"
JOURNAL_NAME = "journal.sqlite3"
ANSWERS_NAME = "answers.sqlite3"  # what `bounces` has processed (answers.process)
DEFAULT_SMTP_URL = "smtp://127.0.0.1:1025"
__all__ = ["LANG_HINT", "LANG_TAG"]  # re-exported: the rule lives in config_schema
# Written right to left: languages (ISO 639) and scripts (ISO 15924) in a language tag.
RTL_LANGUAGES = frozenset({"ar", "arc", "ckb", "dv", "fa", "he", "iw", "ks", "nqo", "ps", "sd", "syr", "ug",
                           "ur", "yi"})
RTL_SCRIPTS = frozenset({"arab", "hebr", "nkoo", "rohg", "syrc", "thaa"})


def text_direction(lang: str) -> str:
    """'rtl' for a language tag written right to left (ar, he, fa-IR, az-Arab; not ku-Latn), else 'ltr':
    the email's and the web page's ``dir``, so text aligns and punctuation falls where readers expect."""
    primary, *rest = lang.lower().split("-")
    scripts = [part for part in rest if len(part) == 4]
    if scripts:
        return "rtl" if scripts[0] in RTL_SCRIPTS else "ltr"
    return "rtl" if primary in RTL_LANGUAGES else "ltr"


@dataclass(frozen=True, kw_only=True)
class Newsletter:
    """Values every issue's template and headers need; overridable per issue."""

    name: str = ""
    from_addr: str = ""  # "Display Name <addr@domain>"
    reply_to: str = ""
    postal_address: str = ""
    site_url: str = ""
    # "{token}" is filled per subscriber ("{email}" too, in a mailto: only).
    unsubscribe_url: str = ""
    unsubscribe_mailto: str = ""
    list_id: str = ""
    contact: str = ""
    template: str = "default"
    lang: str = "en"  # the language of the issues (BCP 47), for screen readers and hyphenation
    images: str = "embed"  # "embed" (CID attachments) or "link" (rewrite to site_url)
    social: dict[str, str] = field(default_factory=dict)

    @property
    def from_address(self) -> str:
        """The bare address of From, used as envelope sender and Message-ID domain."""
        from email.utils import parseaddr  # here, not at import: every command's --help imports this module

        return parseaddr(self.from_addr)[1]

    @property
    def dir(self) -> str:
        """"rtl" or "ltr", from ``lang``."""
        return text_direction(self.lang)

    @property
    def from_domain(self) -> str:
        addr = self.from_address
        return addr.rpartition("@")[2] if "@" in addr else "localhost"


@dataclass(frozen=True, kw_only=True)
class Smtp:
    """Where and how fast to send: the one place the [smtp] defaults are written (the
    engine's SendOptions and ``send --help`` take theirs from here). The password never
    lives here: env or prompt.

    ``concurrency`` 8: one core saturates around 4-8 pipelined connections; more only
    costs the server sessions (and providers cap concurrent sessions, often at 10)."""

    url: str = DEFAULT_SMTP_URL
    concurrency: int = 8
    rate: float = 0.0  # messages per second across all connections; 0 = unlimited
    max_per_connection: int = 1000
    attempts: int = 5
    max_errors: int = 1000
    timeout: float = 30.0  # seconds for every command but the final dot
    data_timeout: float = 600.0  # seconds for the reply to the final dot (RFC 5321 4.5.3.2.6)
    refusal_breaker: int = 5  # the same refusal for this many recipients before any success stops the run
    cafile: str = ""  # a private CA bundle to trust besides the system's (PEM)
    # With CHUNKING and PIPELINING: BDAT transactions on the wire at once per connection.
    # A crash leaves up to this many per connection uncertain (1 = one at a time).
    in_flight: int = 4


@dataclass(frozen=True, kw_only=True)
class Site:
    """The public web archive that ``gigo-mail publish`` writes (see publish.py)."""

    dir: str = "site"  # relative to the newsletter's root
    per_page: int = 20  # issues per archive page; more make page/2/, page/3/, ...
    description: str = ""  # the feeds' and the archive's description (default: the newsletter's name)
    subscribe_url: str = ""  # a signup form; shown as a subscribe block on every page
    subscribe_mailto: str = ""  # or an address to write to
    # publish copies remote images (a CDN's, another site's) into the site, and the email takes them
    # from there: the newsletter's own domain serves them, and no third party sees the opens
    copy_remote_images: bool = False


@dataclass(frozen=True, kw_only=True)
class Dkim:
    """Where the DKIM keys are. The keys themselves never live here: a file or the environment."""

    selector: str = ""
    key_file: str = ""  # PEM, relative to the newsletter root; env GIGO_DKIM_KEY holds the PEM instead
    domain: str = ""  # d=; the From domain when empty
    ed25519_selector: str = ""  # an optional second signature (RFC 8463), never instead of RSA
    ed25519_key_file: str = ""  # env GIGO_DKIM_ED25519_KEY holds the PEM instead

    @property
    def enabled(self) -> bool:
        return bool(self.selector)

    def key_pem(self, root: Path, ed25519: bool = False) -> tuple[bytes | None, str]:
        """The PEM (or None when not configured) and where it came from, for messages.

        Order: env GIGO_DKIM_KEY (GIGO_DKIM_ED25519_KEY), then ``key_file``.
        """
        name_of_env = env.DKIM_ED25519_KEY if ed25519 else env.DKIM_KEY
        value = env.get(name_of_env)
        if value:
            return value.encode(), f"env {name_of_env}"
        name = self.ed25519_key_file if ed25519 else self.key_file
        if not name:
            return None, ""
        path = root / name
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            key = "ed25519_key_file" if ed25519 else "key_file"
            raise ConfigError(f"{root / CONFIG_NAME} [dkim] {key}: cannot read {path}: {exc.strerror}; "
                              f"fix the path or set {name_of_env}") from exc


@dataclass(frozen=True, kw_only=True)
class UnsubscribeSync:
    """Where ``send`` pulls suppressions from when the one-click page runs on another machine."""

    sync_url: str = ""  # e.g. "https://gigo.dev/suppressions"; empty: the page runs here (or not at all)
    cafile: str = ""  # a private CA bundle for sync_url (PEM)
    old_tokens_until: str = ""  # YYYY-MM-DD: honour old readable tokens until then (default: send.tokens)
    mailto_token: bool = True  # List-Unsubscribe's mailto: unsubscribe+<token>@domain (needs plus-addressing)


@dataclass(frozen=True, kw_only=True)
class Bounces:
    """Where the answers to a send arrive, and how a bounce is tied to its recipient."""

    source: str = ""  # "imaps://user@host/INBOX", "maildir:PATH", "mbox:PATH" or "json:PATH"
    move_to: str = ""  # a folder for processed messages; empty: remembered by Message-ID instead
    return_path: str = ""  # envelope sender for the list; empty: the From address
    verp: bool = False  # envelope sender bounce+<token>@domain (needs a catch-all on that domain)
    cafile: str = ""  # a private CA bundle for the IMAP server (PEM)

    def envelope_base(self, from_address: str) -> str:
        """The return address that bounces go to (before any VERP token)."""
        return self.return_path or from_address


@dataclass(frozen=True, kw_only=True)
class ListSettings:
    """[list]: the default list, and how to read a list no platform rule recognises.

    ``path`` is the list previews and test sends take their values from. Any of the
    column keys (``email``, names, ``tags``, ``opt_out_column``) describes a custom format,
    which is then used for every list instead of recognising the platform."""

    path: str = ""
    email: str = ""
    name: str = ""
    first_name: str = ""
    last_name: str = ""
    tags: str = ""
    opt_out_column: str = ""
    opt_out_values: tuple[str, ...] = ()
    opt_in_values: tuple[str, ...] = ()
    not_opt_out: tuple[str, ...] = ()  # columns that look like opt-out flags but are not

    @property
    def describes_format(self) -> bool:
        return any((self.email, self.name, self.first_name, self.last_name, self.tags, self.opt_out_column))


@dataclass(frozen=True, kw_only=True)
class SuppressionSettings:
    """[suppression]: when an address stops being mailed without anyone asking."""

    soft_bounces: int = 3  # consecutive issues with a transient failure before it is suppressed


# The sections of gigo-mail.toml, the keys spelled differently from their field, and the top level.
SECTIONS: dict[str, type] = {"newsletter": Newsletter, "smtp": Smtp, "site": Site, "dkim": Dkim,
                             "unsubscribe": UnsubscribeSync, "bounces": Bounces, "list": ListSettings,
                             "suppression": SuppressionSettings, "signup": Signup}
_ALIASES: dict[str, dict[str, str]] = {"newsletter": {"from": "from_addr"}, "smtp": {}, "site": {},
                                       "dkim": {}, "unsubscribe": {}, "bounces": {}, "list": {},
                                       "suppression": {}, "signup": {}}
TOP_LEVEL_KEYS = ("unsubscribe_secret",)
# front matter / toml key -> Newsletter field name
_NEWSLETTER_KEYS = {f.name: f.name for f in fields(Newsletter)} | _ALIASES["newsletter"]


def known_keys() -> dict[str, tuple[str, ...]]:
    """Every key gigo-mail.toml accepts, by section ('' for the top level), as a user writes it."""
    keys: dict[str, tuple[str, ...]] = {"": TOP_LEVEL_KEYS}
    for section, cls in SECTIONS.items():
        spelled = {name: key for key, name in _ALIASES[section].items()}
        keys[section] = tuple(spelled.get(f.name, f.name) for f in fields(cls))
    return keys


@dataclass(frozen=True, kw_only=True)
class Config:
    root: Path
    newsletter: Newsletter
    smtp: Smtp
    unsubscribe_secret: str = ""
    site: Site = field(default_factory=Site)
    dkim: Dkim = field(default_factory=Dkim)
    unsubscribe: UnsubscribeSync = field(default_factory=UnsubscribeSync)
    bounces: Bounces = field(default_factory=Bounces)
    list_settings: ListSettings = field(default_factory=ListSettings)
    suppression: SuppressionSettings = field(default_factory=SuppressionSettings)
    signup: Signup = field(default_factory=Signup)

    @property
    def path(self) -> Path:
        """The gigo-mail.toml this config was read from (or would be)."""
        return self.root / CONFIG_NAME

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def journal_path(self) -> Path:
        return journal_path(self.root)

    @property
    def site_dir(self) -> Path:
        return self.root / self.site.dir

    def with_overrides(self, values: dict[str, Any]) -> Config:
        """Apply an issue's front matter keys that name newsletter settings."""
        changes = {_NEWSLETTER_KEYS[k]: v for k, v in values.items() if k in _NEWSLETTER_KEYS}
        if not changes:
            return self
        return replace(self, newsletter=replace(self.newsletter, **changes))

    def smtp_url(self, override: str | None = None) -> str:
        """Precedence: gigo-mail.toml [smtp] url, then env GIGO_SMTP_URL, then --smtp."""
        return override or env.smtp_url() or self.smtp.url

    @property
    def smtp_cafile(self) -> str:
        """A private CA to trust: [smtp] cafile, else env GIGO_SMTP_CAFILE ('' for none)."""
        return self.smtp.cafile or env.smtp_cafile()

    @property
    def sync_cafile(self) -> str:
        """A private CA for sync_url: [unsubscribe] cafile, else env GIGO_SYNC_CAFILE."""
        return self.unsubscribe.cafile or env.sync_cafile()

    @property
    def imap_cafile(self) -> str:
        """A private CA for the IMAP server: [bounces] cafile, else env GIGO_IMAP_CAFILE."""
        return self.bounces.cafile or env.imap_cafile()

    def secret(self) -> bytes:
        """The HMAC key for unsubscribe tokens.

        Order: env GIGO_UNSUBSCRIBE_SECRET, then ``unsubscribe_secret`` in the
        config, then ``.gigo/secret`` (created once, so tokens stay valid).
        """
        value = env.unsubscribe_secret() or self.unsubscribe_secret
        if value:
            return value.encode()
        path = self.state_dir / "secret"
        try:
            private_dir(path.parent)
            tighten(path)  # one made 0644 by an earlier version
            if not path.exists():
                import secrets

                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_hex(32))
            return path.read_text().strip().encode()
        except OSError as exc:
            raise ConfigError(f"cannot read or create {path}: {exc.strerror}; "
                              "set GIGO_UNSUBSCRIBE_SECRET instead") from exc

    def require(self, *names: str) -> None:
        """Raise a ConfigError naming the first empty newsletter value."""
        for name in names:
            if not getattr(self.newsletter, name):
                key = "from" if name == "from_addr" else name
                raise ConfigError(f"{self.path}: [newsletter] has no '{key}'; add it")


def journal_path(root: Path) -> Path:
    """``<root>/.gigo/journal.sqlite3``: the one spelling of the journal's path."""
    return Path(root) / STATE_DIR / JOURNAL_NAME


def shown_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` holding gigo-mail.toml, else ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    return here


def require_root(start: Path | None = None) -> Path:
    """The newsletter's folder, for a command that needs one: a ConfigError outside any."""
    root = find_root(start)
    if not (root / CONFIG_NAME).is_file():
        raise ConfigError(f"no {CONFIG_NAME} here or above; run gigo-mail init DIR to make a newsletter "
                          "(or cd into one)")
    return root


def _pick(cls: type, table: dict[str, Any], aliases: dict[str, str]) -> Any:
    """A section's dataclass from its table (already checked against the schema)."""
    return cls(**{aliases.get(key, key): value for key, value in table.items()})


def _section(data: dict[str, Any], name: str, table: dict[str, Any] | None = None) -> Any:
    """The section ``name`` of gigo-mail.toml (or ``table``, its values made ready) as its dataclass."""
    return _pick(SECTIONS[name], data.get(name, {}) if table is None else table, _ALIASES[name])


def read_toml(path: Path) -> dict[str, Any]:
    """gigo-mail.toml parsed and checked whole against the schema: every wrong value is one line
    ``gigo-mail.toml:LINE:COL: <what> — <fix>``, all of them in one ConfigError."""
    import tomllib  # only reading needs the parser; the CLI imports this module for its defaults

    shown = shown_path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read it ({exc.strerror}); check that it is a file you can read") \
            from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - raw.rfind(b"\n", 0, exc.start)
        raise ConfigError(f"{shown}:{line}:{col}: not UTF-8 text (byte 0x{raw[exc.start]:02x}) — "
                          "save the file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = (re.search(r"\s*\(at line (\d+), column (\d+)\)", message)
              or re.search(r"\s*\(at end of document\)", message))
        where = f"{at.group(1)}:{at.group(2)}" if at and at.lastindex else f"{text.count(chr(10)) + 1}:1"
        what = message[:at.start()] if at else message
        raise ConfigError(f"{shown}:{where}: not valid TOML ({what}) — {toml_fix(what)}") from None
    problems = sorted(((*position_of(text, p), p) for p in validate(data)), key=lambda item: item[:2])
    if problems:
        raise ConfigError("\n".join(f"{shown}:{line}:{col}: {p.what} — {p.fix}" for line, col, p in problems))
    return data


def load_config(root: Path | None = None, *, required: bool = False) -> Config:
    """Read gigo-mail.toml from ``root`` (or the nearest parent), checked whole (``read_toml``).
    A missing file is allowed unless ``required``: defaults apply, and commands that need a
    value say which one is missing."""
    root = require_root(root) if required else find_root(root)
    path = root / CONFIG_NAME
    data = read_toml(path) if path.is_file() else {}
    newsletter = _section(data, "newsletter")
    list_table = {key: tuple(value) if isinstance(value, list) else value
                  for key, value in data.get("list", {}).items()}
    sync_table = {key: value.isoformat() if hasattr(value, "isoformat") else value  # a TOML date too
                  for key, value in data.get("unsubscribe", {}).items()}
    return Config(root=root, newsletter=newsletter, smtp=_section(data, "smtp"),
                  unsubscribe_secret=str(data.get("unsubscribe_secret", "")), site=_section(data, "site"),
                  dkim=_section(data, "dkim"), unsubscribe=_section(data, "unsubscribe", sync_table),
                  bounces=_section(data, "bounces"), list_settings=_section(data, "list", list_table),
                  suppression=_section(data, "suppression"), signup=_section(data, "signup"))
