"""Proof of work for the signup form: ALTCHA challenges (protocol v2, the ``altcha`` package).

A challenge is PBKDF2/SHA-256 parameters signed with an HMAC key derived from the
newsletter's secret (so the page needs no key of its own, and the secret never leaves
it). It is made in the "deterministic" mode: the server picks the counter the client must
find (between half of ``pow_max_counter`` and all of it), so every solution costs about the
same work, and signs the derived key, so checking a solution is two HMACs, not a KDF.
Challenges expire after ``CHALLENGE_TTL``; a solved one is spent once (the store remembers
it until it expires), so one solution cannot be replayed for a second signup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

ALGORITHM = "PBKDF2/SHA-256"
CHALLENGE_TTL = 600  # seconds to solve and submit; the spent-proof list is kept this long
MAX_PAYLOAD = 2048  # a real payload is about 700 characters
_HMAC_CONTEXT = b"gigo-mail altcha challenge v1\x00"
_KEY_CONTEXT = b"gigo-mail altcha key v1\x00"


def _derived(secret: bytes, context: bytes) -> bytes:
    return hmac.new(secret, context, hashlib.sha256).digest()


@dataclass(frozen=True)
class Verdict:
    """A checked payload: ``ok``, and when it is, the id to spend and when it expires."""

    ok: bool
    proof_id: str = ""
    expires: float = 0.0
    why: str = ""


class ProofOfWork:
    """Makes and checks challenges for one newsletter secret."""

    def __init__(self, secret: bytes, cost: int, max_counter: int) -> None:
        self._hmac_secret = _derived(secret, _HMAC_CONTEXT)
        self._key_secret = _derived(secret, _KEY_CONTEXT)
        self.cost = cost
        self.max_counter = max_counter

    def challenge(self) -> dict[str, object]:
        """A fresh signed challenge as the widget fetches it (JSON-ready)."""
        import altcha

        low = max(1, self.max_counter // 2)
        counter = low + secrets.randbelow(max(1, self.max_counter - low + 1))
        made = altcha.create_challenge(ALGORITHM, self.cost, counter=counter,
                                       expires_at=int(time.time()) + CHALLENGE_TTL,
                                       hmac_secret=self._hmac_secret, hmac_key_secret=self._key_secret)
        return dict(made.to_dict())

    def check(self, payload: str) -> Verdict:
        """Whether ``payload`` (the widget's base64 field) solves a challenge of ours, unexpired."""
        import altcha

        if not payload or len(payload) > MAX_PAYLOAD:
            return Verdict(False, why="no proof of work")
        try:
            data = json.loads(base64.b64decode(payload, validate=True))
            params = data["challenge"]["parameters"]
            signature = str(data["challenge"]["signature"])
        except (ValueError, KeyError, TypeError):
            return Verdict(False, why="malformed proof of work")
        if not isinstance(params, dict) or params.get("algorithm") != ALGORITHM \
                or params.get("cost") != self.cost or not isinstance(params.get("expiresAt"), int) \
                or not params.get("keySignature"):
            return Verdict(False, why="not a challenge of this page")
        result = altcha.verify_solution(payload, self._hmac_secret, hmac_key_secret=self._key_secret)
        if not result.verified:
            return Verdict(False, why="expired proof of work" if result.expired else "invalid proof of work")
        return Verdict(True, proof_id=hashlib.sha256(signature.encode()).hexdigest(),
                       expires=float(params["expiresAt"]))
