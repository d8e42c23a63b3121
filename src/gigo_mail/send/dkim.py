"""DKIM signatures (RFC 6376, relaxed/relaxed) with the private-key step in OpenSSL.

The body of an issue is nearly the same for every recipient: only the slot values
differ. So the static pieces of the body are canonicalized once (``prepare``), and a
recipient's body hash is SHA-256 over those pieces and their few canonicalized
values: no regex over 37 KB per message. The RSA (and optional Ed25519, RFC 8463)
signature is one call into ``cryptography``.

Canonicalizing a message piece by piece is exact because every boundary between
two pieces sits next to a quoted-printable soft break (``=`` CRLF): no run of
whitespace and no line end crosses a boundary.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from gigo_mail.config import CONFIG_NAME, Config
from gigo_mail.errors import ConfigError, DkimError

# RFC 8058 one-click counts only when both List-Unsubscribe headers are signed.
SIGNED_HEADERS = ("from", "from", "to", "subject", "date", "message-id", "reply-to", "list-id",
                  "list-unsubscribe", "list-unsubscribe-post", "mime-version", "content-type")
MIN_RSA_BITS = 2048  # RFC 8301 says SHOULD; 1024-bit keys are weak enough to forge
_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+\r\n")
_FIELD_START = re.compile(rb"\r\n(?![ \t])")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


def canonical_body_piece(piece: bytes) -> bytes:
    """Relaxed body canonicalization of one piece (RFC 6376 3.4.4), without the end rule."""
    if b"\t" in piece or b"  " in piece or b" \r\n" in piece:
        piece = _WSP_RUN.sub(b" ", _TRAILING_WSP.sub(b"\r\n", piece))
    return piece


def canonical_header(field: bytes) -> bytes:
    """Relaxed header canonicalization (RFC 6376 3.4.2) of one field, CRLF included."""
    name, _, value = field.partition(b":")
    value = _WSP_RUN.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name.strip(b" \t").lower() + b":" + value + b"\r\n"


def split_fields(head: bytes) -> list[bytes]:
    """A header block (each field ending in CRLF) as its fields, folds kept."""
    return [f for f in _FIELD_START.split(head.rstrip(b"\r\n")) if f]


def public_record(key: PrivateKey) -> str:
    """The TXT record value to publish at ``selector._domainkey.domain``."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode()}"


def load_private_key(pem: bytes, where: str) -> PrivateKey:
    """An RSA (at least 2048 bits) or Ed25519 private key from unencrypted PEM."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:  # the key's bytes are never part of the message
        raise DkimError(f"{where}: not an unencrypted PEM private key") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimError(f"{where}: a {key.key_size}-bit RSA key is too short for DKIM; "
                            "make a 2048-bit one with 'gigo-mail dkim keygen'")
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise DkimError(f"{where}: DKIM keys are RSA or Ed25519, not {type(key).__name__}")


@dataclass(frozen=True)
class DkimKey:
    selector: str
    key: PrivateKey

    @property
    def algorithm(self) -> str:
        return "ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) else "rsa-sha256"

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(hashlib.sha256(data).digest())  # PureEdDSA over the hash (RFC 8463)
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())


class DkimSigner:
    """Signs messages for one domain: an RSA key, and optionally an Ed25519 key as well."""

    def __init__(self, domain: str, keys: Sequence[DkimKey], headers: Sequence[str] = SIGNED_HEADERS) -> None:
        if not keys:
            raise DkimError("DKIM signing needs at least one key")
        self.domain = domain.encode("idna").decode("ascii")
        self.keys = tuple(keys)
        self._wanted = tuple(h.encode() for h in headers)
        self._h_tag = ":".join(headers)
        self._static: dict[bytes, bytes] = {}

    def prepare(self, static_pieces: Iterable[bytes]) -> None:
        """Canonicalize the body pieces every message shares, once."""
        for piece in static_pieces:
            self._static[piece] = canonical_body_piece(piece)

    def body_hash(self, body_parts: Iterable[bytes]) -> str:
        """bh= over body pieces whose boundaries sit at line ends or soft breaks."""
        digest = hashlib.sha256()
        static = self._static
        for piece in body_parts:
            canonical = static.get(piece)
            digest.update(canonical_body_piece(piece) if canonical is None else canonical)
        return base64.b64encode(digest.digest()).decode()

    def _signed_headers(self, head: bytes) -> bytes:
        """The canonical fields h= names, each instance taken from the bottom up (RFC 6376 5.4.2)."""
        by_name: dict[bytes, list[bytes]] = {}
        for field in split_fields(head):
            by_name.setdefault(field.partition(b":")[0].strip().lower(), []).append(field)
        out = []
        for name in self._wanted:
            instances = by_name.get(name)
            if instances:  # an absent (or over-signed) field contributes nothing
                out.append(canonical_header(instances.pop()))
        return b"".join(out)

    def signature_fields(self, head: bytes, body_parts: Sequence[bytes], now: int | None = None) -> bytes:
        """DKIM-Signature fields (one per key) to put above ``head``, the message's header block."""
        signed = self._signed_headers(head)
        bh = self.body_hash(body_parts)
        stamp = int(time.time()) if now is None else now
        out = []
        for key in self.keys:
            field = (f"DKIM-Signature: v=1; a={key.algorithm}; c=relaxed/relaxed; d={self.domain};\r\n"
                     f" s={key.selector}; t={stamp};\r\n h={self._h_tag};\r\n bh={bh};\r\n b=").encode()
            b = base64.b64encode(key.sign(signed + canonical_header(field)[:-2]))
            out.append(field + b"\r\n ".join(b[i:i + 72] for i in range(0, len(b), 72)) + b"\r\n")
        return b"".join(out)

    def sign(self, message: bytes) -> bytes:
        """A whole CRLF message, signed (the slow path, for messages not built by the factory)."""
        head, sep, body = message.partition(b"\r\n\r\n")
        if not sep:
            raise DkimError("cannot sign a message without a header/body separator")
        body = canonical_body_piece(body).rstrip(b"\r\n")
        return self.signature_fields(head + b"\r\n", [body + b"\r\n" if body else b""]) + message


def signer_for(config: Config) -> DkimSigner | None:
    """The signer ``[dkim]`` asks for (None without a selector); d= defaults to the From domain."""
    settings = config.dkim
    if not settings.enabled:
        return None
    pem, where = settings.key_pem(config.root)
    if pem is None:
        raise ConfigError(f"{config.root / CONFIG_NAME}: [dkim] has a selector but no key; set 'key_file' "
                          "or the environment variable GIGO_DKIM_KEY")
    key = load_private_key(pem, where)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimError(f"{where}: the main DKIM key must be RSA (the big receivers do not verify "
                        "Ed25519 yet); an Ed25519 key goes in 'ed25519_key_file' as a second signature")
    keys = [DkimKey(settings.selector, key)]
    if settings.ed25519_selector:
        pem, where = settings.key_pem(config.root, ed25519=True)
        if pem is None:
            raise ConfigError(f"{config.root / CONFIG_NAME}: [dkim] has an 'ed25519_selector' but no key; "
                              "set 'ed25519_key_file' or GIGO_DKIM_ED25519_KEY")
        second = load_private_key(pem, where)
        if not isinstance(second, ed25519.Ed25519PrivateKey):
            raise DkimError(f"{where}: 'ed25519_key_file' holds an RSA key, not an Ed25519 one")
        keys.append(DkimKey(settings.ed25519_selector, second))
    return DkimSigner(settings.domain or config.newsletter.from_domain, keys)


def generate_key(kind: str = "rsa") -> PrivateKey:
    """A new 2048-bit RSA key, or an Ed25519 key."""
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_key_path(path: Path) -> Path:
    """Where keygen puts the public half: ``dkim-s1.pem`` -> ``dkim-s1.pub.pem``."""
    return path.with_name(path.stem + ".pub.pem")


def write_key_pair(path: Path, key: PrivateKey) -> Path:
    """The private key as PEM readable by the owner only, and the public key beside it.
    An existing file is never overwritten. Returns the public key's path."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = public_key_path(path)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    written: list[Path] = []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for target, data, mode in ((path, pem, 0o600), (public, public_pem, 0o644)):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            written.append(target)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
    except FileExistsError as exc:
        for done in written:  # no half pair left behind
            done.unlink()
        raise DkimError(f"{exc.filename} already exists; keygen never overwrites a key (choose --out or "
                        "a new --selector)") from None
    except OSError as exc:
        raise DkimError(f"cannot write {exc.filename or path}: {exc.strerror}") from exc
    return public


def zone_entry(selector: str, domain: str, record: str) -> str:
    """A zone-file line for the record, split into the 255-byte strings TXT allows."""
    chunks = " ".join(f'"{record[i:i + 250]}"' for i in range(0, len(record), 250))
    return f"{selector}._domainkey.{domain}. IN TXT ( {chunks} )"
