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
    # Data-only folders (no __init__.py, e.g. the detector graph) are listed so that setuptools
    # ships them without warning; each must exist and have package-data.
    data_only = {k for k in cfg["package-data"] if k != "*" and k in listed and k not in found}
    for pkg in data_only:
        top = next(p for p in mapping if pkg.startswith(p + "."))
        assert (ROOT / mapping[top] / pkg[len(top) + 1 :].replace(".", "/")).is_dir(), pkg
    found |= data_only
    assert found == listed, {"missing from pyproject": sorted(found - listed), "stale": sorted(listed - found)}


def test_top_level_layout():
    for name in ("training", "export", "runtime", "benchmarks", "tests", "pyproject.toml", "README.md"):
        assert (ROOT / name).exists(), name


def test_runtime_dependencies_exclude_torch():
    deps = _pyproject()["project"]["dependencies"]
    assert not [d for d in deps if d.split("=")[0].split(">")[0].split("<")[0].strip() in {"torch", "transformers"}]


def _name(requirement: str) -> str:
    import re

    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower()


def _extra_names(extra: str, seen: set[str] | None = None) -> set[str]:
    """Distribution names an extra installs, following self-references like ``milmer[cpu,demo]``."""
    import re

    extras = _pyproject()["project"]["optional-dependencies"]
    seen = set() if seen is None else seen
    seen.add(extra)
    names: set[str] = set()
    for req in extras[extra]:
        if _name(req) == "milmer":
            for sub in re.search(r"\[(.*)\]", req).group(1).split(","):
                if sub.strip() not in seen:
                    names |= _extra_names(sub.strip(), seen)
        else:
            names.add(_name(req))
    return names


def test_runtime_dependencies_are_what_inference_needs():
    """A Jetson install gets only inference's needs: no training stack, no plotting/demo writers, no
    mediapipe (no linux-aarch64 wheel), and no ONNX Runtime build (the cpu/gpu extras pick one)."""
    core = {_name(d) for d in _pyproject()["project"]["dependencies"]}
    assert core == {
        "numpy", "scipy", "opencv-python-headless", "mne", "scikit-learn", "python-picard", "av", "typer", "rich"
    }


def test_onnxruntime_builds_never_share_an_environment():
    """onnxruntime and onnxruntime-gpu both write the onnxruntime/ folder: no extra may pull both."""
    extras = _pyproject()["project"]["optional-dependencies"]
    for extra in extras:
        names = _extra_names(extra)
        assert not {"onnxruntime", "onnxruntime-gpu"} <= names, extra
    assert "onnxruntime-gpu" in _extra_names("gpu") and "onnxruntime" not in _extra_names("gpu")


def test_mediapipe_is_only_the_reference_extra():
    extras = _pyproject()["project"]["optional-dependencies"]
    holders = sorted(e for e in extras if "mediapipe" in _extra_names(e))
    assert holders == ["reference"]


def test_cuda_python_stays_on_the_cuda_12_line():
    """cuda-python 13.x needs a CUDA 13 driver; JetPack 6 and TensorRT's cu12 wheels are CUDA 12."""
    from packaging.requirements import Requirement

    (req,) = [Requirement(r) for r in _pyproject()["project"]["optional-dependencies"]["trt"] if _name(r) == "cuda-python"]
    assert req.specifier.contains("12.9.0") and not req.specifier.contains("13.0.0")


def test_requires_python_admits_jetpack_6():
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert spec.contains("3.10.13") and spec.contains("3.13.0")


def test_lock_pins_every_dependency_ci_installs():
    """Every distribution that .ci/install asks for is pinned (==) in requirements/lock.txt."""
    import re

    lock = (ROOT / "requirements" / "lock.txt").read_text()
    pinned = {m.group(1).lower() for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==", lock, re.M)}
    install = (ROOT / ".ci" / "install").read_text()
    assert '-c "$LOCK"' in install and "LOCK=requirements/lock.txt" in install
    extras = re.search(r'-e "\.\[([a-z,]+)\]"', install).group(1).split(",")
    wanted = {_name(d) for d in _pyproject()["project"]["dependencies"]}
    for extra in extras:
        wanted |= _extra_names(extra)
    norm = lambda s: s.replace("_", "-").replace(".", "-")  # noqa: E731
    assert {norm(n) for n in wanted} - {norm(p) for p in pinned} == set()
