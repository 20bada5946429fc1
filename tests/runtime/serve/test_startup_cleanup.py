"""Killed during start-up, ``milmer serve`` leaves nothing behind: a stop signal unwinds through
the clean-up, and what SIGKILL leaves is removed by the next start (:func:`remove_stale`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from milmer.runtime.serve.hygiene import remove_stale

HOME = Path.home() / ".cache" / "pytriton"


def _traces(pid: int) -> dict[str, list]:
    procs = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if f"milmer-{pid}-".encode() in (entry / "cmdline").read_bytes():
                procs.append(int(entry.name))
        except OSError:
            continue
    return {
        "workspaces": sorted(HOME.glob(f"milmer-{pid}-*")),
        "shm": sorted(Path("/dev/shm").glob(f"pytrtion{pid}-*")),
        "processes": procs,
    }


def _tritonserver(pid: int) -> list[int]:
    """The tritonserver process of server ``pid`` (not its Python backend stubs)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if f"milmer-{pid}-".encode() in argv0 and argv0.endswith(b"/tritonserver"):
            found.append(int(entry.name))
    return found


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _start_and_catch_tritonserver_starting(start_server, tmp_path):
    server = start_server(tmp_path / "serve.log")
    pid = server.proc.pid
    assert _wait_for(lambda: _traces(pid)["processes"], 120), server.output()[-3000:]  # tritonserver runs
    assert "Serving" not in server.output()
    return server, pid


def test_a_stop_signal_during_startup_cleans_up(start_server, tmp_path):
    server, pid = _start_and_catch_tritonserver_starting(start_server, tmp_path)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 130
    server.stop()
    assert "Interrupted." in server.output()
    assert _wait_for(lambda: not any(_traces(pid).values()), 30), _traces(pid)


def test_what_sigkill_leaves_is_removed_at_the_next_start(start_server, tmp_path):
    server, pid = _start_and_catch_tritonserver_starting(start_server, tmp_path)
    server.proc.kill()
    server.stop()
    # tritonserver ends with its parent (PyTriton sets PR_SET_PDEATHSIG), its workspace stays; the
    # Python backend stubs it was starting may outlive it (re-parented to init): the next start ends them.
    assert _wait_for(lambda: not _tritonserver(pid), 60), _traces(pid)
    left = _traces(pid)
    assert left["workspaces"], left
    removed = remove_stale(HOME)
    assert set(left["workspaces"] + left["shm"]) <= set(removed)
    assert not any(_traces(pid).values())


def test_remove_stale_ends_what_still_runs_from_a_dead_servers_workspace(tmp_path, monkeypatch):
    """A stub started from a killed server's workspace (a copy of sleep standing in for
    triton_python_backend_stub) is ended before its workspace is removed; one from a live
    server's workspace is left running."""
    import shutil

    import milmer.runtime.serve.hygiene as hygiene

    monkeypatch.setattr(hygiene, "SHM_DIR", tmp_path / "no-shm")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    stubs = {}
    for owner in (int(dead.stdout), os.getpid()):
        stub = tmp_path / f"milmer-{owner}-0" / "backends" / "python" / "triton_python_backend_stub"
        stub.parent.mkdir(parents=True)
        shutil.copy(shutil.which("sleep"), stub)
        stubs[owner] = subprocess.Popen([str(stub), "300"])
    try:
        assert _wait_for(lambda: all(Path(f"/proc/{p.pid}/cmdline").read_bytes() for p in stubs.values()), 10)
        removed = remove_stale(tmp_path)
        assert [p.name for p in removed] == [f"milmer-{int(dead.stdout)}-0"]
        assert stubs[int(dead.stdout)].wait(timeout=10) == -signal.SIGTERM
        assert stubs[os.getpid()].poll() is None and (tmp_path / f"milmer-{os.getpid()}-0").is_dir()
        # A stub whose workspace is already gone (removed by an older clean-up) is still found by
        # its command line, and ended even though it ignores SIGTERM (as the real stubs do).
        orphan = tmp_path / f"milmer-{int(dead.stdout)}-1" / "stub"
        orphan.parent.mkdir()
        shutil.copy(sys.executable, orphan)
        script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(300)"
        stubs[0] = subprocess.Popen([str(orphan), "-c", script], stdout=subprocess.PIPE)
        stubs[0].stdout.readline()  # SIGTERM ignored from here on
        shutil.rmtree(orphan.parent)
        assert remove_stale(tmp_path) == []  # nothing on disk to remove
        assert stubs[0].wait(timeout=10) == -signal.SIGKILL
    finally:
        for proc in stubs.values():
            proc.kill()
            proc.wait()


def test_remove_stale_keeps_what_a_live_server_uses(tmp_path, monkeypatch):
    import milmer.runtime.serve.hygiene as hygiene

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_pid, live_pid = int(dead.stdout), os.getpid()
    shm = tmp_path / "shm"
    shm.mkdir()
    monkeypatch.setattr(hygiene, "SHM_DIR", shm)
    for name in (f"milmer-{dead_pid}-0", f"milmer-{dead_pid}-3", f"milmer-{live_pid}-0", "workspace_abc", f"other-{dead_pid}-0"):
        (tmp_path / name).mkdir()
    for name in (f"pytrtion{dead_pid}-1a2b-x", f"pytrtion{live_pid}-1a2b-x", f"psm_{dead_pid}"):
        (shm / name).write_bytes(b"\0")
    removed = remove_stale(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f"milmer-{dead_pid}-0", f"milmer-{dead_pid}-3", f"pytrtion{dead_pid}-1a2b-x"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["shm", f"milmer-{live_pid}-0", "workspace_abc", f"other-{dead_pid}-0"])
    assert sorted(p.name for p in shm.iterdir()) == sorted([f"pytrtion{live_pid}-1a2b-x", f"psm_{dead_pid}"])
