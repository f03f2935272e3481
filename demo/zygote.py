"""A fork server for networks of processes: import the services once, then fork each surface from that.

A service's process spends about a second importing its libraries and a twentieth of that building its
app. A demo or test network runs fifteen or more processes, so :class:`Zygote` starts one helper process
that imports everything, and asks it to fork each surface. Every child is an ordinary, separate process
that runs exactly what the command line runs (``hotline-node worker`` is ``node.cli.main(["worker"])``),
with its own environment, log file and pid; it can be signalled and killed like any other. Nothing is
shared after the fork: no app, no database connection and no thread exists in the helper when it forks
(configuration is read only when an app is built, in the child).

The helper reaps its children and reports their exit codes; it and every child die with the process
that started the helper (Linux parent-death signals), so no service outlives a test run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

PRELOAD = ("exchange.cli", "node.cli", "exchange.surfaces", "node.surfaces", "people.views", "audit.views")


def _parent_death_signal() -> None:
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Zygote:
    """The client side: one helper process, asked over a pipe to fork surfaces."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from demo.zygote import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            preexec_fn=_parent_death_signal,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        ready = self._read()
        if ready.get("ready") is not True:
            raise RuntimeError(f"the fork server did not start: {ready}")

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the fork server exited")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _ask(self, **request: Any) -> dict[str, Any]:
        with self._lock:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            return self._read()

    def spawn(self, module: str, argv: list[str], env: Mapping[str, str], log: Path) -> ForkedProcess:
        answer = self._ask(cmd="spawn", module=module, argv=argv, env=dict(env), log=str(log))
        return ForkedProcess(self, int(answer["pid"]), int(answer["serial"]))

    def returncode(self, serial: int) -> int | None:
        if self._process.poll() is not None:
            return -signal.SIGKILL  # The helper is gone, and its children died with it (parent-death signal).
        answer = self._ask(cmd="poll", serial=serial)
        code = answer.get("returncode")
        return None if code is None else int(code)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()


class ForkedProcess:
    """A child of the fork server, with the part of ``subprocess.Popen``'s interface the runner uses."""

    def __init__(self, zygote: Zygote, pid: int, serial: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.serial = serial
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.returncode(self.serial)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        return code


def serve() -> None:
    """The helper: import the services, then fork on request until its stdin closes."""
    import importlib

    _parent_death_signal()
    # Ctrl-C in a terminal goes to the whole process group: the helper leaves stopping to its parent, which
    # stops every child in order (the children keep the default, and stop at once).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for module in PRELOAD:
        importlib.import_module(module)
    # Children are known by a serial number, not by pid: the kernel reuses pids, and a new child must
    # never be reported with the exit code of an earlier one that had its pid.
    running: dict[int, int] = {}  # pid -> serial
    exits: dict[int, int] = {}  # serial -> exit code
    serials = iter(range(1, 1 << 62))

    def reap(_signum: int, _frame: Any) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            serial = running.pop(pid, None)
            if serial is not None:
                exits[serial] = os.waitstatus_to_exitcode(status)

    signal.signal(signal.SIGCHLD, reap)
    out: IO[str] = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if request["cmd"] == "poll":
            out.write(json.dumps({"returncode": exits.get(request["serial"])}) + "\n")
        elif request["cmd"] == "spawn":
            serial = next(serials)
            # SIGCHLD is held back until the new child is in ``running``, so one that dies at once is reaped
            # under its own serial.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            try:
                pid = os.fork()
                if pid == 0:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
                    _child(request)
                running[pid] = serial
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
            out.write(json.dumps({"pid": pid, "serial": serial}) + "\n")
        out.flush()


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the surface's process, then exit with its code (never return)."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _parent_death_signal()
        os.setpgid(0, 0)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdin = open(0)  # noqa: SIM115 - the process's own stdin, for its lifetime.
        sys.stdout = os.fdopen(1, "w", buffering=1)
        sys.stderr = os.fdopen(2, "w", buffering=1)
        os.environ.update(request["env"])
        main = __import__(request["module"], fromlist=["main"]).main
        try:
            main(request["argv"], standalone_mode=True)
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
