"""pyproject lists every package folder, and the folders map to the milmer namespace."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed():
    cfg = _pyproject()["tool"]["setuptools"]
    mapping = cfg["package-dir"]
    listed = set(cfg["packages"])
    found = set()
    for pkg, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([pkg, *rel.parts]))
    assert found == listed, {"missing from pyproject": sorted(found - listed), "stale": sorted(listed - found)}


def test_top_level_layout():
    for name in ("training", "export", "runtime", "benchmarks", "tests", "pyproject.toml", "README.md"):
        assert (ROOT / name).exists(), name


def test_runtime_dependencies_exclude_torch():
    deps = _pyproject()["project"]["dependencies"]
    assert not [d for d in deps if d.split("=")[0].split(">")[0].split("<")[0].strip() in {"torch", "transformers"}]
