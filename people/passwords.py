"""Passwords: Argon2id hashes, and a policy by length and against a list of common passwords.

The policy follows NIST SP 800-63B: length is what matters (at least 12 characters, up to 256, any
characters including spaces and emoji), no composition rules, and a refusal of passwords that are known
to be common or that contain the username. The list (``data/common-passwords.txt``) ships with the
project; nothing is looked up over the network.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256

_HASHER = PasswordHasher()  # argon2-cffi's defaults: Argon2id, RFC 9106's low-memory profile.


@cache
def _dummy_hash() -> str:
    """A hash to check unknown usernames against, so that they take as long as real ones (made once)."""
    return _HASHER.hash("not a password anybody has: it keeps failed look-ups as slow as real ones")


class PasswordPolicyError(ValueError):
    """The password does not meet the policy; the message says why, for the person choosing it."""


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("people").joinpath("data/common-passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line and not line.startswith("#"))


def check_policy(password: str, *, username: str = "") -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` is acceptable for ``username``."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"Use at least {MIN_LENGTH} characters. A short sentence is easy to remember.")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"Use at most {MAX_LENGTH} characters.")
    lowered = password.lower()
    # A common password with digits or symbols around it ("password123456", "!qwerty2024") is as common.
    core = lowered.strip("0123456789!@#$%^&*()-_=+.,;:?/ ")
    common = common_passwords()
    if lowered in common or (len(core) >= 4 and core in common) or len(set(lowered)) < 4:
        raise PasswordPolicyError("This password is too common. Choose one that others are unlikely to use.")
    if username and username.lower() in lowered:
        raise PasswordPolicyError("The password must not contain your username.")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; with no stored hash, spend the same time and answer False."""
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _HASHER.check_needs_rehash(stored_hash)
