"""The fast path of address validation answers exactly as email-validator does, or defers to it."""

from __future__ import annotations

import random
import string

import pytest
from email_validator import EmailNotValidError, validate_email

from gigo_mail.address import _plain_match, validate_address


def _slow(email: str) -> tuple[str, str, bool] | None:
    try:
        checked = validate_email(email, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError:
        return None
    key = checked.normalized.lower()
    if checked.ascii_email:
        return key, checked.ascii_email, False
    return key, f"{checked.local_part}@{checked.ascii_domain}", True


EDGES = ["a@b.co", "A.B@Example.COM", "o'brien@x.ie", "a+tag@x.org", "x@localhost", "x@a.test", "x@a.onion",
         "x@a.ARPA", "x@a.local", "x@xn--bcher-kva.example", "a..b@x.org", ".a@x.org", "a.@x.org", "a@-x.org",
         "a@x-.org", "a@x.o", "a@x.123", "a@1.2.3.4", "a@x..org", "a@x.org.", "x" * 64 + "@x.org",
         "x" * 65 + "@x.org", "a@" + "b" * 63 + ".org", "a@" + "b" * 64 + ".org", "ab--c@x.org",
         "a@ab--c.org",
         "a@x_y.org", "a@x.co_m", "a@b.c-d.org", "a@b.-c.org", "a@b.c-.org", "a b@x.org", "a@x.org ",
         "Zoë@example.org", "a@bücher.example", "user@[192.0.2.1]", '"a b"@x.org', "a@" + "c." * 120 + "org"]


def _fuzz(count: int) -> list[str]:
    rng = random.Random(19)
    local_chars = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-.@\"()[]:;<> \\ü"
    label_chars = string.ascii_letters + string.digits + "-_"
    cases = []
    for _ in range(count):
        local = "".join(rng.choice(local_chars) for _ in range(rng.randint(1, 12)))
        labels = ["".join(rng.choice(label_chars) for _ in range(rng.randint(1, 6)))
                  for _ in range(rng.randint(1, 3))]
        cases.append(f"{local}@{'.'.join(labels)}")
    return cases


@pytest.mark.parametrize("email", EDGES)
def test_the_fast_path_agrees_with_email_validator_on_edge_cases(email: str) -> None:
    expected = _slow(email)
    if _plain_match(email) is not None:  # answered from the text: email-validator accepts it
        assert expected is not None and expected[0] == email.lower()
    try:
        got: tuple[str, str, bool] | None = validate_address(email)
    except ValueError:
        got = None
    assert got == expected


def test_the_fast_path_agrees_with_email_validator_on_random_addresses() -> None:
    fast = 0
    for email in _fuzz(30_000):
        if _plain_match(email) is None:
            continue
        fast += 1
        assert validate_address(email) == _slow(email), email
    assert fast > 1_000  # the fuzz does reach the fast path


def test_a_list_of_plain_addresses_does_not_load_email_validator() -> None:
    """Its Unicode tables take 20-35 ms to compile: a send to plain addresses never pays them."""
    import subprocess
    import sys
    from pathlib import Path

    import gigo_mail

    code = ("import sys; from gigo_mail.address import validate_address; "
            "validate_address('Reader.One+x@Example.com'); print('email_validator' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(gigo_mail.__file__).parents[1])}).stdout
    assert out.split() == ["False"]
