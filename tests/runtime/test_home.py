"""milmer_home: $MILMER_HOME, else ~/.cache/milmer."""

from __future__ import annotations

from milmer.runtime.home import milmer_home


def test_milmer_home_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MILMER_HOME", raising=False)
    assert milmer_home() == tmp_path / ".cache" / "milmer"
    monkeypatch.setenv("MILMER_HOME", "~/state")
    assert milmer_home() == tmp_path / "state"
