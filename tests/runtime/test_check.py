"""The shared input checks in milmer.runtime.check."""

import re

import pytest

from milmer.runtime.check import MilmerInputError, check_keys


def test_check_keys_with_every_key_required():
    check_keys("model spec", {"a": 1, "b": 2}, ["a", "b"])
    with pytest.raises(MilmerInputError, match=re.escape("Invalid model spec: unknown key(s) face.c; expected face.a, face.b.")):
        check_keys("model spec", {"a": 1, "b": 2, "c": 3}, ["a", "b"], prefix="face.")
    with pytest.raises(MilmerInputError, match=re.escape("Invalid model spec: missing key(s) b.")):
        check_keys("model spec", {"a": 1}, ["a", "b"])


def test_check_keys_with_optional_keys():
    check_keys("training config", {"a": 1}, ["a", "b"], required=["a"])
    with pytest.raises(MilmerInputError, match=re.escape("Invalid training config: unknown key(s) z; expected some of a, b.")):
        check_keys("training config", {"a": 1, "z": 0}, ["a", "b"], required=["a"])
    with pytest.raises(MilmerInputError, match=re.escape("Invalid training config: missing required key(s) a.")):
        check_keys("training config", {"b": 1}, ["a", "b"], required=["a"])
