"""SHA-512 crypt must match the reference implementation byte for byte."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import string
import subprocess

import pytest

from components.specs.htpasswd import DEFAULT_ROUNDS, GENERATED_PASSWORD_ROUNDS, htpasswd_line, sha512_crypt
from images.mlflow import server_contract as contract


@pytest.mark.parametrize(
    ("password", "salt"),
    [
        ("secret", "saltsalt"),
        ("x", "a"),
        ("x" * 200, "0123456789abcdef"),
        ("pässwörd ünicode", "AbC./9"),
        ("a" * 64, "Zz"),
        ("Hello world!", "saltstring"),
    ],
)
def test_matches_openssl_passwd_6(password, salt):
    reference = subprocess.run(
        ["openssl", "passwd", "-6", "-salt", salt, "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert sha512_crypt(password, salt) == reference


def test_known_vector_with_rounds():
    # From the SHA-crypt specification's test vectors.
    assert sha512_crypt("Hello world!", "saltstringsaltst", rounds=10000) == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZe"
        "HBy/YTBmSK6H9qs/y3RnOaw5v."
    )


def test_rejects_bad_salt_and_usernames():
    with pytest.raises(ValueError):
        sha512_crypt("pw", "bad salt!")
    with pytest.raises(ValueError):
        htpasswd_line("a:b", "pw", "salt", generated=True)
    assert htpasswd_line("mlflow", "pw", "salt", generated=False).startswith("mlflow:$6$salt$")


def test_the_spec_s_minimum_rounds_vector():
    # The SHA-crypt specification's vector for a rounds value below the minimum (clamped to 1000).
    assert sha512_crypt("the minimum number is still observed", "roundstoolow", rounds=1000) == (
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQp"
        "yUNGc0dqbpBYYBaHHrsX."
    )


def glibc_crypt(password: str, setting: str) -> str:
    """What nginx calls (ngx_crypt -> crypt(3) of glibc's libcrypt) on every request."""
    library = ctypes.util.find_library("crypt")
    assert library, "libcrypt is not installed"
    crypt = ctypes.CDLL(library).crypt
    crypt.restype, crypt.argtypes = ctypes.c_char_p, [ctypes.c_char_p, ctypes.c_char_p]
    return crypt(password.encode(), setting.encode()).decode()


def test_a_generated_password_gets_the_minimum_work_factor_and_glibc_verifies_it():
    """bench/auth_cost.py: nginx's CPU per request follows the rounds. The generated password is
    unguessable without them; a password a person chose keeps the default work factor."""
    password = "A" * contract.PROXY_PASSWORD_LENGTH
    generated = htpasswd_line("mlflow", password, "salt", generated=True).strip().split(":", 1)[1]
    chosen = htpasswd_line("mlflow", password, "salt", generated=False).strip().split(":", 1)[1]
    assert generated.startswith(f"$6$rounds={GENERATED_PASSWORD_ROUNDS}$salt$") and GENERATED_PASSWORD_ROUNDS == 1000
    assert chosen.startswith("$6$salt$") and DEFAULT_ROUNDS == 5000  # the spec's implicit default
    assert glibc_crypt(password, generated) == generated and glibc_crypt(password, chosen) == chosen
    assert glibc_crypt("wrong", generated) != generated
    # What makes the low work factor safe: the generated password's entropy (its alphabet is
    # RandomPassword's special=False one), far above any brute force.
    alphabet = len(string.ascii_letters + string.digits)
    assert contract.PROXY_PASSWORD_LENGTH * math.log2(alphabet) >= 190
