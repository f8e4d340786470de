"""API keys as strings (pure): their shape, their hash, what ``parse`` refuses, and that no
repr shows one."""

from __future__ import annotations

import hashlib
import re

import pytest

from personal_assistant.auth import tokens

SHAPE = re.compile(r"pa_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


def test_a_new_key_is_pa_id_secret_and_its_prefix_and_hash_go_with_it() -> None:
    made = tokens.new_token()
    assert SHAPE.fullmatch(made.token)
    assert made.token.startswith(made.prefix + "_")
    assert len(made.prefix) == 11  # fits api_keys.prefix, String(16)
    assert made.token_hash == hashlib.sha256(made.token.encode()).hexdigest()
    assert tokens.parse(made.token) == (made.prefix, made.token[len(made.prefix) + 1 :])


def test_keys_differ_every_time() -> None:
    made = [tokens.new_token() for _ in range(200)]
    assert len({m.token for m in made}) == 200
    assert len({m.prefix for m in made}) == 200
    assert len({m.token_hash for m in made}) == 200


def test_the_hash_is_64_hex_digits_and_depends_on_every_character() -> None:
    token = tokens.new_token().token
    digest = tokens.hash_token(token)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert tokens.hash_token(token) == digest
    assert tokens.hash_token(token[:-1] + ("A" if token[-1] != "A" else "B")) != digest


def test_no_repr_shows_the_key_or_its_hash() -> None:
    made = tokens.new_token()
    shown = repr(made) + str(made)
    secret = made.token.split("_", 2)[2]
    assert made.prefix in shown
    assert made.token not in shown
    assert secret not in shown
    assert made.token_hash not in shown


GOOD = "pa_abcd1234_" + "A" * 21 + "_-" + "z" * 20


def test_the_good_example_is_good() -> None:
    assert tokens.parse(GOOD) == ("pa_abcd1234", "A" * 21 + "_-" + "z" * 20)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "pa",
        "pa_",
        "pa_abcd1234",
        "pa_abcd1234_",
        GOOD[:-1],  # a secret one character short
        GOOD + "x",  # one character long
        GOOD + "\n",
        " " + GOOD,
        GOOD.replace("pa_", "PA_"),
        GOOD.replace("pa_", "px_"),
        GOOD.replace("abcd1234", "ABCD1234"),  # the id is lowercase
        GOOD.replace("abcd1234", "abcd123"),  # the id is 8 characters
        GOOD.replace("abcd1234", "abcd12345"),
        GOOD.replace("abcd1234", "abcd-234"),
        GOOD.replace("_abcd1234_", "-abcd1234-"),
        GOOD[:-1] + "=",  # padding is not urlsafe base64 of token_urlsafe
        GOOD[:-1] + "+",
        GOOD[:-1] + "é",
        GOOD[:-1] + "\x00",
        "Bearer " + GOOD,
        "pa_abcd1234_" + "A" * 10_000,
        "x" * 201,
    ],
)
def test_parse_refuses_what_is_not_a_key(token: str) -> None:
    assert tokens.parse(token) is None


@pytest.mark.parametrize("value", [None, 42, b"pa_abcd1234_" + b"A" * 43, ["pa"]])
def test_parse_refuses_what_is_not_a_string(value: object) -> None:
    assert tokens.parse(value) is None


class _Untouchable:
    """Stands in for the key's pattern: any use of it fails the test."""

    def fullmatch(self, text: str) -> None:
        raise AssertionError("the pattern was tried on a string over the limit")


def test_a_string_over_the_limit_is_refused_on_its_length_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_KEY", _Untouchable())
    assert tokens.parse("pa_abcd1234_" + "A" * 10_000) is None
    assert tokens.parse("x" * (tokens.MAX_LENGTH + 1)) is None
    with pytest.raises(AssertionError):  # at the limit, the shape is looked at
        tokens.parse("x" * tokens.MAX_LENGTH)
