"""What ``milmer serve`` leaves on the machine: ports, file modes, workspaces, processes, shared memory.

PyTriton runs ``tritonserver`` from a copy in a workspace folder (``~/.cache/pytriton/...``, 22 MB,
which also holds the model repository: the server writes it there before tritonserver starts), the
Python backend starts one ``triton_python_backend_stub`` process per model instance, and tensors
travel through POSIX shared memory (``/dev/shm/pytrtion<pid>-*``, ``/dev/shm/psm_*``). This module

- refuses ports that are already in use, before anything starts (:func:`check_ports_free`);
- makes every file the server creates private to the serving user (:func:`private_umask`: umask
  077, inherited by tritonserver and the stubs, so shared memory holding faces and EEG is 0600);
- names the workspace after this process (``milmer-<pid>-<n>``) so a later start can tell a
  dead server's leftovers from a running server's files (:func:`remove_stale`);
- after each tritonserver run, ends its stubs that outlived it and removes its workspace and
  shared-memory regions (:class:`Leftovers`).

Linux only (``/proc``); elsewhere the process and folder scans find nothing.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..check import MilmerInputError

__all__ = ["Leftovers", "check_ports_free", "private_umask", "remove_stale", "workspace_path", "SHM_DIR"]

SHM_DIR = Path("/dev/shm")
_WORKSPACE = re.compile(r"^milmer-(\d+)-\d+$")
_SHM = re.compile(r"^pytrtion(\d+)-")


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """Raise MilmerInputError naming the option when a port cannot be bound on ``host``.

    ports: option name (``--http-port``) -> port. Binding here, before the model loads, turns
    "another server already listens there" into one clear line instead of a failure deep in Triton.
    """
    for option, port in ports.items():
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Triton does: TIME_WAIT is not "in use"
            try:
                probe.bind((host, port))
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise MilmerInputError(f"Invalid value for '--host': cannot listen on {host!r} ({err.strerror}).") from None
                raise MilmerInputError(
                    f"Invalid value for '{option}': port {port} on {host} is in use (another server?); "
                    f"stop it or pick a free port with {option}."
                ) from None


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """umask 077 while serving: the workspace (model repository included) is 0700, its files 0600."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def workspace_path(home: Path, run: int) -> Path:
    """The PyTriton workspace of this process's ``run``-th tritonserver (not created here)."""
    return home / f"milmer-{os.getpid()}-{run}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdlines() -> dict[int, str]:
    """pid -> command line of every process this user can read (Linux ``/proc``)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue
    return found


def _ours(path: Path) -> bool:
    try:
        return path.lstat().st_uid == os.getuid()
    except OSError:
        return False


def remove_stale(home: Path) -> list[Path]:
    """Remove what servers killed before they could clean up left behind; return what was removed.

    Only this user's files and processes whose owner is provably gone: workspaces
    ``milmer-<pid>-<n>`` (in ``home``) and shared memory ``pytrtion<pid>-*`` of a pid that no
    longer runs, and processes still running from such a workspace, ended first
    (:meth:`Leftovers.clean`; the workspace may already be gone): a server killed while
    tritonserver was starting its models leaves Python backend stubs that outlive tritonserver
    (re-parented to init, they never notice it is gone, and they ignore SIGTERM).
    """
    workspaces: set[Path] = set()
    if home.is_dir():
        workspaces |= {p for p in home.iterdir() if (m := _WORKSPACE.match(p.name)) and not _alive(int(m.group(1)))}
    started_from = re.compile(re.escape(str(home) + os.sep) + r"(milmer-(\d+)-\d+)" + re.escape(os.sep))
    for pid, cmd in _cmdlines().items():
        if (m := started_from.search(cmd)) and not _alive(int(m.group(2))) and _ours(Path(f"/proc/{pid}")):
            workspaces.add(home / m.group(1))
    shm: list[Path] = []
    if SHM_DIR.is_dir():
        shm = [p for p in SHM_DIR.iterdir() if (m := _SHM.match(p.name)) and not _alive(int(m.group(1)))]
    # Ownership decided first: a workspace's clean-up takes its shared memory too.
    workspaces = {p for p in workspaces if _ours(p) or not p.exists()}
    shm = [p for p in shm if _ours(p)]
    removed: list[Path] = []
    for path in sorted(workspaces):
        existed = path.exists()
        if path.is_symlink():
            path.unlink(missing_ok=True)
        else:
            Leftovers(workspace=path, shm_prefix=f"pytrtion{_WORKSPACE.match(path.name).group(1)}-").clean()
        if existed and not path.exists():
            removed.append(path)
    for path in shm:
        path.unlink(missing_ok=True)
        if not path.exists():
            removed.append(path)
    return removed


@dataclass
class Leftovers:
    """The processes, workspace and shared memory of one tritonserver run, removed after it stopped
    (or died).

    workspace:  the run's PyTriton workspace (tritonserver and its stubs run from there)
    shm_prefix: the Python backend's shared-memory regions (PyTriton names them after this process;
                runs follow each other, so after a run every region of this process is that run's)
    """

    workspace: Path
    shm_prefix: str = field(default_factory=lambda: f"pytrtion{os.getpid()}-")

    def processes(self) -> dict[int, str]:
        """pid -> command line of processes started from the workspace (tritonserver, stubs)."""
        marker = str(self.workspace) + os.sep
        return {pid: cmd for pid, cmd in _cmdlines().items() if marker in cmd and pid != os.getpid()}

    def make_private(self) -> None:
        """chmod 0600 the run's shared-memory regions: the Python backend creates them 0644 whatever
        the umask (Boost.Interprocess sets the mode explicitly), and they carry the request tensors.
        Call once the models are ready, before any request is let in."""
        if SHM_DIR.is_dir():
            for region in SHM_DIR.glob(f"{self.shm_prefix}*"):
                with contextlib.suppress(OSError):
                    os.chmod(region, 0o600)

    def clean(self, *, grace_s: float = 2.0) -> list[str]:
        """End the run's surviving processes (SIGTERM, then SIGKILL after ``grace_s``) and remove its
        workspace and shared memory; return a line per process that had to be ended."""
        ended: list[str] = []
        survivors = self.processes()
        for pid, cmd in survivors.items():
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            ended.append(f"pid {pid}: {cmd.split(' ', 1)[0].rsplit('/', 1)[-1]}")
        deadline = time.monotonic() + grace_s
        while survivors and time.monotonic() < deadline:
            time.sleep(0.1)
            survivors = {pid: c for pid, c in survivors.items() if _alive(pid) and _running(pid)}
        for pid in survivors:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if SHM_DIR.is_dir():
            for region in SHM_DIR.glob(f"{self.shm_prefix}*"):
                region.unlink(missing_ok=True)
        shutil.rmtree(self.workspace, ignore_errors=True)
        return ended


def _running(pid: int) -> bool:
    """False for a zombie (ended, not yet reaped by its parent) or a vanished process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
