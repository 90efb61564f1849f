"""The process pool that pack and unpack share, and the bounded queue that feeds it.

Decoding or encoding a 28x28 PNG is mostly Python overhead in Pillow, so
threads contend for the GIL (measured: 2 threads slower than 1); forked
processes scale. With fork the model reaches the workers by copy-on-write
memory, never pickled per task.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, TypeVar

from .modelfile import Model

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

PARALLEL_FROM = 1024  # read or write image files in worker processes from this many on

Task = TypeVar("Task")
Started = TypeVar("Started")

# The model of the pack in progress, in a forked reader process (set by start_reader).
_reader_model: Model | None = None


def reader_model() -> Model:
    """The model this reader process was started with."""
    assert _reader_model is not None, "not a reader process"
    return _reader_model


def _exit_with(parent: int) -> None:
    """Make this worker process exit when `parent` does.

    A killed pack or unpack must not leave its workers behind: they wait on a
    pipe whose other end the sibling workers keep open, so they would sleep
    forever (seen: 158 orphans after the kill tests). A daemon thread checks
    the parent twice a second; portable, unlike Linux's PR_SET_PDEATHSIG.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_writer(parent: int) -> None:
    """Initialise a forked PNG-writing process of unpack."""
    _exit_with(parent)


def _start_reader(parent: int, model: Model) -> None:
    """Initialise a forked reader process of pack: adopt the model, and run its matrix products
    on one thread, since the readers already use every core (two BLAS threads in each of two
    readers made pack 1.5x slower here)."""
    from threadpoolctl import threadpool_limits  # here: only reader processes need it

    global _reader_model
    _exit_with(parent)
    _reader_model = model
    threadpool_limits(1)


def worker_count(workers: int | None) -> int:
    return workers or os.cpu_count() or 1


def worker_pool(
    workers: int | None, files: int, model: Model | None = None, wanted: bool = False
) -> ProcessPoolExecutor | None:
    """Worker processes for reading (with `model`: pack's readers) or writing image files, or None
    to do the work in this process: small jobs are not worth the fork, unless `wanted` (pack's
    latent search: milliseconds of CPU per image)."""
    workers = worker_count(workers)
    if workers < 2 or not (wanted or files >= PARALLEL_FROM):
        return None
    # Imported here: multiprocessing and concurrent.futures cost `aec info` and `--help` 20 ms at start-up,
    # and a small job (one image extracted) as much.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_reader if model is not None else _start_writer,
        initargs=(os.getpid(), model) if model is not None else (os.getpid(),),
    )


def likely_many_files(paths: Iterable[str | os.PathLike], at_least: int = PARALLEL_FROM) -> bool:
    """Whether `paths` probably hold at least `at_least` files, judged from a bounded look (the first
    few folders, a few thousand entries): enough to start pack's readers before the inputs are fully
    listed and checked. A wrong guess costs time only, never a different file."""
    paths = list(paths)
    if len(paths) >= at_least:
        return True
    folders = [os.fspath(p) for p in paths if os.path.isdir(p)]
    files = len(paths) - len(folders)
    looked = 0
    while folders and looked < 4 * at_least and files < at_least:
        try:
            with os.scandir(folders.pop(0)) as entries:
                for entry in entries:
                    looked += 1
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    else:
                        files += 1
                    if files >= at_least or looked >= 4 * at_least:
                        break
        except OSError:
            continue  # collect_inputs reports it
    return files >= at_least


def in_order(tasks: Iterable[Task], start: Callable[[Task], Started], ahead: int) -> Iterator[tuple[Task, Started]]:
    """(task, start(task)) in task order, each task started up to `ahead` tasks before it is yielded.

    `start` typically submits work to a pool and returns its future: the
    workers stay busy while the caller consumes results in order, and at
    most `ahead` results wait in memory.
    """
    todo = iter(tasks)
    pending: collections.deque = collections.deque()

    def start_next() -> None:
        for task in todo:
            pending.append((task, start(task)))
            return

    for _ in range(max(ahead, 1)):
        start_next()
    while pending:
        done = pending.popleft()
        start_next()
        yield done
