"""Starting, waiting for and killing the CPU processes of a multi-controller test job on localhost:
each process a fresh Python with forced host devices, gloo collectives, private caches and the
coordinator on a free local port."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_env(devices: int, cache: pathlib.Path) -> dict[str, str]:
    """This environment without real weights, on CPU with `devices` forced host devices, the project
    importable, XLA at the suite's optimisation level (tests/conftest.py) and the caches (features,
    compilation) under `cache`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DFIJAX_WEIGHTS", "DFIJAX_DEVICES")}
    env.update(
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_backend_optimization_level=1 --xla_force_host_platform_device_count={devices}",
        PYTHONPATH=str(ROOT),
        DFIJAX_CACHE=str(cache),
        DFIJAX_JAX_CACHE=str(cache / "jax"),
        DFIJAX_JAX_CACHE_MIN_SECS="0",  # the jobs of a test share every compiled program
    )
    return env


def start(
    argv: list[str], processes: int, devices: int, cache: pathlib.Path, stdout: bool = False
) -> list[subprocess.Popen]:
    """`python *argv` as `processes` CPU processes of `devices` devices each, in `cache` (the cwd);
    with 2+ processes each gets --coordinator 127.0.0.1:<free port> --num-processes N --process-id i.
    stderr is kept, stdout only with stdout=True (see `wait`); each process leads its own session, so
    `kill` ends whatever it started."""
    env = cpu_env(devices, cache)
    dist = ["--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", str(processes)] if processes > 1 else []
    procs: list[subprocess.Popen] = []
    try:
        for i in range(processes):
            ident = ["--process-id", str(i)] if processes > 1 else []
            procs.append(
                subprocess.Popen(
                    [sys.executable, *argv, *dist, *ident],
                    cwd=cache,
                    env=env,
                    stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
    except BaseException:
        kill(procs)
        raise
    return procs


def kill(procs: list[subprocess.Popen]) -> None:
    """SIGKILL each process's session that is still running, and reap it."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def wait(procs: list[subprocess.Popen], timeout: float = 150) -> list[str]:
    """Each process's stderr once all have exited 0 (all are killed on a failure or a timeout)."""
    return [err for _, err in outputs(procs, timeout)]


def outputs(procs: list[subprocess.Popen], timeout: float = 150) -> list[tuple[str | None, str]]:
    """Each process's (stdout or None, stderr) once all have exited 0 (all are killed on a failure or
    a timeout)."""
    try:
        outs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        kill(procs)
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs
