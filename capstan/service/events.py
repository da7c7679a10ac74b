"""Event fan-out of one run: worker threads publish, asyncio subscribers (SSE, ?wait=true) receive.

Each subscriber gets the events published so far and then every new one, in order, through its
own asyncio.Queue fed with `loop.call_soon_threadsafe`, so publishing never blocks on a slow client.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class EventHub:
    def __init__(self):
        self._lock = threading.Lock()
        self._events: list[dict] = []
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = []
        self.closed = False

    def publish(self, event: dict) -> None:
        with self._lock:
            self._events.append(event)
            subscribers = list(self._subscribers)
            if event.get("type") == "end":
                self.closed = True
                self._subscribers.clear()
        for loop, queue in subscribers:
            with contextlib.suppress(RuntimeError):  # that client's loop may be gone
                loop.call_soon_threadsafe(queue.put_nowait, event)

    def subscribe(self) -> tuple[list[dict], asyncio.Queue | None]:
        """(events so far, queue of later events); the queue is None when the run already ended."""
        loop = asyncio.get_running_loop()
        with self._lock:
            past = list(self._events)
            if self.closed:
                return past, None
            queue: asyncio.Queue = asyncio.Queue()
            self._subscribers.append((loop, queue))
            return past, queue

    def unsubscribe(self, queue: asyncio.Queue | None) -> None:
        with self._lock:
            self._subscribers = [(lp, q) for lp, q in self._subscribers if q is not queue]
