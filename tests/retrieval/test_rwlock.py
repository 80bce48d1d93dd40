"""The store owner's readers-writer lock: readers together, a writer alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from server.retrieval.rwlock import ReadWriteLock


def test_readers_are_inside_together() -> None:
    lock = ReadWriteLock()
    both_inside = threading.Barrier(2, timeout=30)  # breaks if the lock serialised them

    def read() -> None:
        with lock.read():
            both_inside.wait()

    with ThreadPoolExecutor(max_workers=2) as pool:
        for future in [pool.submit(read) for _ in range(2)]:
            future.result()


def test_a_writer_is_alone_and_may_read_within_its_write() -> None:
    lock = ReadWriteLock()
    state = {"readers": 0, "writers": 0}
    guard = threading.Lock()
    broken: list[str] = []

    def enter(kind: str) -> None:
        with guard:
            state[kind] += 1
            if state["writers"] > 1 or (state["writers"] and state["readers"]):
                broken.append(f"{state}")

    def leave(kind: str) -> None:
        with guard:
            state[kind] -= 1

    def work(i: int) -> None:
        for j in range(200):
            if (i + j) % 5 == 0:
                with lock.write():
                    enter("writers")
                    with lock.read():  # reentrant for the writer's own thread
                        pass
                    leave("writers")
            else:
                with lock.read():
                    enter("readers")
                    leave("readers")

    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(work, i) for i in range(8)]:
            future.result()
    assert broken == []
    assert state == {"readers": 0, "writers": 0}
