"""The first call of the analysis's numba kernels in a process, made by one caller on the machine.

numba compiles a kernel (or loads it from its disk cache) on its first call in a process, and
caches what it compiled beside the library's source. Two callers doing that at once went wrong
in two ways: two threads of one process crashed it (a segmentation fault in librosa's
``peak_pick`` gufunc), and two processes compiling into an empty cache together left a corrupt
cache entry that crashed every later process of that install. So until its first guarded call
has finished, a process runs guarded functions one thread at a time and under a machine-wide
file lock; afterwards they run freely. The Docker images and the test session compile the kernels
once beforehand (:func:`beatframe.music.analysis.warm_up`).
"""

from __future__ import annotations

import fcntl
import functools
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: One lock file for every process on the machine (every user may open it).
LOCK_PATH = os.path.join(tempfile.gettempdir(), "beatframe-numba-first-call.lock")

_FIRST = threading.Lock()
_compiled = threading.Event()
_inside = threading.local()  # a guarded function that calls another holds the locks already


@contextmanager
def _machine_lock() -> Iterator[None]:
    try:
        fd = os.open(LOCK_PATH, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:  # an unwritable temp folder: the thread lock still holds within this process
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def first_call_alone(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, run by one caller on the machine at a time until one guarded call in this process
    has finished."""
    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        if _compiled.is_set() or getattr(_inside, "held", False):
            return fn(*args, **kwargs)
        with _FIRST, _machine_lock():
            _inside.held = True
            try:
                result = fn(*args, **kwargs)
            finally:
                _inside.held = False
        _compiled.set()
        return result

    return guarded
