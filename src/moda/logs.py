"""What moda prints besides its results: one-line warnings, and third-party native logging kept quiet.

MediaPipe and TFLite log from C++ straight to file descriptor 2, partly from their own threads and after the
call that caused it has returned (their Python logging switches do not reach it). The command line therefore
points descriptor 2 at /dev/null for the whole process and gives Python's `sys.stderr` a descriptor of its own
(`silence_native_stderr`); library calls into MediaPipe are also wrapped in `native_logs_quiet`. Both stand
down with `set_verbose(True)` (`moda ... --verbose`) or the environment variable MODA_VERBOSE=1.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

_verbose = os.environ.get("MODA_VERBOSE", "") not in ("", "0")
_lock = threading.Lock()
_depth = 0  # active `native_logs_quiet` blocks, over all threads
_saved_stderr: int | None = None


def set_verbose(verbose: bool) -> None:
    global _verbose
    _verbose = verbose


def is_verbose() -> bool:
    return _verbose


@contextmanager
def native_logs_quiet() -> Iterator[None]:
    """Silence native code's writes to stderr inside the block (Python's own `sys.stderr` too, as it shares the
    descriptor: nothing meant for the user is printed inside)."""
    global _depth, _saved_stderr
    if _verbose:
        yield
        return
    with _lock:
        if _depth == 0:
            sys.stderr.flush()
            _saved_stderr = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved_stderr is not None:
                sys.stderr.flush()
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)
                _saved_stderr = None


def one_line_warnings() -> None:
    """Show warnings as `moda: warning: MESSAGE` (no file name, no source line); verbose keeps Python's format."""
    if _verbose:
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        print(f"moda: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show


def silence_native_stderr() -> None:
    """For the rest of the process: native code's writes to descriptor 2 go to /dev/null, while `sys.stderr`
    (progress bars, warnings, error lines) still reaches the real stderr through a duplicate descriptor."""
    if _verbose:
        return
    sys.stderr.flush()
    original = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = io.TextIOWrapper(io.FileIO(original, "w"), encoding=sys.stderr.encoding or "utf-8",
                                  errors="backslashreplace", line_buffering=True, write_through=True)
