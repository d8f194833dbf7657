"""SHA-512 crypt must match the reference implementation byte for byte."""

from __future__ import annotations

import subprocess

import pytest

from components.specs.htpasswd import htpasswd_line, sha512_crypt


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
        htpasswd_line("a:b", "pw", "salt")
    assert htpasswd_line("mlflow", "pw", "salt").startswith("mlflow:$6$salt$")
