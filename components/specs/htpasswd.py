"""htpasswd lines nginx can verify on glibc (and musl): SHA-512 crypt, `$6$`.

nginx checks passwords with the C library's crypt(), and glibc has no bcrypt:
a bcrypt htpasswd (what most tools emit) makes every login fail there
(docker-nginx issue 29). SHA-512 crypt is implemented here from Ulrich Drepper's
public specification because Python's `crypt` module is gone from 3.13; the
tests check it against `openssl passwd -6` and a real nginx.
"""

from __future__ import annotations

import hashlib
import re

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SALT_ALPHABET = _ITOA64
DEFAULT_ROUNDS = 5000  # the spec's default; also what `openssl passwd -6` uses
# Byte order of the final digest in the spec's encoding: triples, last one a single byte.
_SHA512_ORDER = (
    (0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4), (47, 5, 26), (6, 27, 48),
    (28, 49, 7), (50, 8, 29), (9, 30, 51), (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13),
    (56, 14, 35), (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19), (62, 20, 41),
)  # fmt: skip


def _repeat_to(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def _encode(digest: bytes) -> str:
    out = []
    for b2, b1, b0 in _SHA512_ORDER:
        word = (digest[b2] << 16) | (digest[b1] << 8) | digest[b0]
        for _ in range(4):
            out.append(_ITOA64[word & 0x3F])
            word >>= 6
    word = digest[63]
    for _ in range(2):
        out.append(_ITOA64[word & 0x3F])
        word >>= 6
    return "".join(out)


def sha512_crypt(password: str, salt: str, rounds: int = DEFAULT_ROUNDS) -> str:
    """The `$6$` crypt string of `password` with `salt` (at most 16 characters are used)."""
    if not re.fullmatch(r"[./0-9A-Za-z]{1,16}", salt):
        raise ValueError("salt must be 1-16 characters of [./0-9A-Za-z]")
    if not 1000 <= rounds <= 999_999_999:
        raise ValueError("rounds must be between 1000 and 999999999")
    pw, sb = password.encode("utf-8"), salt.encode("ascii")

    alternate = hashlib.sha512(pw + sb + pw).digest()
    ctx = hashlib.sha512(pw + sb)
    ctx.update(_repeat_to(alternate, len(pw)))
    length = len(pw)
    while length:
        ctx.update(alternate if length & 1 else pw)
        length >>= 1
    digest_a = ctx.digest()

    p_seq = _repeat_to(hashlib.sha512(pw * len(pw)).digest(), len(pw))
    s_seq = _repeat_to(hashlib.sha512(sb * (16 + digest_a[0])).digest(), len(sb))

    current = digest_a
    for i in range(rounds):
        ctx = hashlib.sha512(p_seq if i & 1 else current)
        if i % 3:
            ctx.update(s_seq)
        if i % 7:
            ctx.update(p_seq)
        ctx.update(current if i & 1 else p_seq)
        current = ctx.digest()

    rounds_part = "" if rounds == DEFAULT_ROUNDS else f"rounds={rounds}$"
    return f"$6${rounds_part}{salt}${_encode(current)}"


def htpasswd_line(username: str, password: str, salt: str) -> str:
    """One `user:hash` line. The salt is passed in (a stable random value) so the
    file, and the container holding it, do not change on every `pulumi up`."""
    if ":" in username or "\n" in username:
        raise ValueError("a username cannot contain ':' or a newline")
    return f"{username}:{sha512_crypt(password, salt)}\n"
