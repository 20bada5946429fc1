"""The missing-package messages in milmer.runtime.dependencies."""

import re

import pytest

from milmer.runtime.check import MilmerInputError
from milmer.runtime.dependencies import missing_dependency_error, missing_package_error


def test_missing_package_error_names_the_package_the_use_and_the_install():
    err = missing_package_error("pyxdf", needed_for="reading .xdf")
    assert isinstance(err, MilmerInputError)
    assert str(err) == (
        "Missing dependency: the Python package 'pyxdf' is not installed; it is needed for reading .xdf. "
        'Install it: `pip install "milmer[xdf]"` (or `pip install pyxdf`).'
    )
    err = missing_package_error("picard", needed_for="ica.method = 'picard'", hint="use ica.method = 'fastica'.")
    assert str(err).endswith("Install it: `pip install python-picard` (the ICA solver). Or use ica.method = 'fastica'.")


def test_missing_dependency_error_only_for_optional_packages():
    err = missing_dependency_error(ImportError("No module named 'mffpy'", name="mffpy"))
    assert err is not None and re.search(r"'mffpy' is not installed .*`pip install mffpy`", str(err))
    assert missing_dependency_error(ImportError("No module named 'numpy'", name="numpy")) is None
    with pytest.raises(KeyError):
        missing_package_error("numpy")


def test_missing_torch_names_the_training_extra():
    """A runtime-only install (no torch) asked to train or export: the user's setup, exit 2."""
    err = missing_dependency_error(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert err is not None and str(err).startswith("Missing dependency: the Python package 'torch' is not installed")
    assert '`pip install "milmer[training]"`' in str(err) and "`milmer export` needs `milmer[export]`" in str(err)
