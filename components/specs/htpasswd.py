"""htpasswd lines nginx can verify on glibc (and musl): SHA-512 crypt, `$6$`.

nginx checks passwords with the C library's crypt(), and glibc has no bcrypt: a bcrypt
htpasswd (what most tools emit) makes every login fail there (docker-nginx issue 29).
The hash comes from libpass (`passlib.hash.sha512_crypt`, the maintained fork of passlib):
Python's own `crypt` module is gone from 3.13. The tests check it against `openssl passwd -6`
and a real nginx.
"""

from __future__ import annotations

import re

from passlib.hash import sha512_crypt as _sha512_crypt

DEFAULT_ROUNDS = 5000  # the spec's default; also what `openssl passwd -6` uses
# For a password the stack generates: the spec's minimum. nginx runs crypt() on every request, so
# the rounds are CPU per request (bench/auth_cost.py measures it). A work factor slows guessing
# by that factor, which protects only a guessable password: a generated one has 32 characters of
# [A-Za-z0-9], 32 x log2(62) = 190 bits, and 5000 rounds instead of 1000 add log2(5) = 2.3 bits
# to an unguessable 190. A password a person chose (none today) must keep DEFAULT_ROUNDS or more.
GENERATED_PASSWORD_ROUNDS = 1000


def sha512_crypt(password: str, salt: str, rounds: int = DEFAULT_ROUNDS) -> str:
    """The `$6$` crypt string of `password` with `salt` (1-16 characters of [./0-9A-Za-z])."""
    # Checked here: passlib would truncate a long salt silently, and its errors name its own API.
    if not re.fullmatch(r"[./0-9A-Za-z]{1,16}", salt):
        raise ValueError("salt must be 1-16 characters of [./0-9A-Za-z]")
    if not 1000 <= rounds <= 999_999_999:
        raise ValueError("rounds must be between 1000 and 999999999")
    return _sha512_crypt.using(salt=salt, rounds=rounds).hash(password)


def htpasswd_line(username: str, password: str, salt: str, *, generated: bool) -> str:
    """One `user:hash` line. The salt is passed in (a stable random value) so the
    file, and the container holding it, do not change on every `pulumi up`. `generated`: the
    password is one the stack drew (GENERATED_PASSWORD_ROUNDS), else DEFAULT_ROUNDS."""
    if ":" in username or "\n" in username:
        raise ValueError("a username cannot contain ':' or a newline")
    rounds = GENERATED_PASSWORD_ROUNDS if generated else DEFAULT_ROUNDS
    return f"{username}:{sha512_crypt(password, salt, rounds=rounds)}\n"
