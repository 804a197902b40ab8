"""One read of the stream for many processors: a shared, bounded feed of pages.

The runner puts the processors that share reads (``Processor.shared_read``, ``[processing]
shared_reads``) into one child process, one thread each, and gives them one
:class:`SharedFeed`. Each keeps its own worker: its own tracker, store connection,
transactions, retries, parking and lock. Only the pages are shared:

- **One page read and decoded once.** A page is read with the union of the readers'
  types and the largest of their batch sizes, by whichever reader first asks for the
  position at the feed's frontier (on its own connection; the others asking for the same
  position wait for that read instead of reading it again). Every reader then takes the
  page from the buffer, filtered to the types it handles (and to its partition).
- **Pages chain by position, never by comparing positions.** A page is kept under the
  position it starts from; a reader takes it when its tracker is exactly there, and its
  next page starts where that one ended. (Positions are compared nowhere: on PostgreSQL
  the stream is not in id order.)
- **Bounded.** The buffer holds at most ``buffer_pages`` pages. When it is full, a reader
  that wants a new page waits while the oldest page is still wanted by a reader, but at
  most ``hold`` seconds; then the oldest page goes. So a slow or failing reader holds the
  others back by at most the buffer (plus ``hold`` once), and memory stays bounded.
- **A reader far behind reads on its own.** A reader whose position is not in the buffer
  (it fell out, or started elsewhere) reads on its own connection with its own types, up
  to the oldest buffered page (``until``), where it joins the feed again; a reader ahead
  of the feed reads on its own until the feed meets it (at the latest at the head, where
  every page ends at the readable head).

A failure while reading a shared page is raised to the reader that read it only; the
others read the position again.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from esctl_lib.stores.base import Page

if TYPE_CHECKING:
    from esctl_lib.events import Event
    from esctl_lib.stores.base import EventStore

#: Pages a shared feed keeps at most.
DEFAULT_BUFFER_PAGES = 8
#: How long a reader wanting a new page waits for the readers of the oldest one.
DEFAULT_HOLD = 1.0


@dataclass(frozen=True, slots=True)
class SharedPage:
    """A page read for the feed, and whether it filled its limit (more may follow).

    ``views`` keeps the page filtered for each set of handled types a reader asked for
    (readers handling the same types filter it once)."""

    page: Page
    full: bool
    views: dict[frozenset[str], Page] = field(default_factory=dict)


@dataclass
class _Reader:
    handled: frozenset[str] | None
    accept: Callable[[Event], bool] | None
    wanted: int | None = None
    shared: int = 0
    alone: int = 0


class SharedFeed:
    """The pages of one stream read for several readers. See the module docstring."""

    def __init__(self, *, types: Collection[str] | None, limit: int,
                 buffer_pages: int = DEFAULT_BUFFER_PAGES, hold: float = DEFAULT_HOLD) -> None:
        self.types = None if types is None else sorted(set(types))
        self.limit = limit
        self.buffer_pages = max(1, buffer_pages)
        self.hold = hold
        self._cond = threading.Condition()
        self._pages: OrderedDict[int, SharedPage] = OrderedDict()
        self._frontier: int | None = None
        self._reading: int | None = None
        self._readers: dict[int, _Reader] = {}
        #: Pages read for the feed and kept (each decoded once; reads at the head that
        #: found nothing new are not counted).
        self.pages_read = 0

    @classmethod
    def for_readers(cls, types: Collection[Collection[str] | None], limits: Collection[int],
                    **kwargs: float) -> SharedFeed:
        """A feed for readers of ``types`` (None: every event) and batch sizes ``limits``."""
        union: set[str] | None = set()
        for wanted in types:
            if wanted is None:
                union = None
                break
            assert union is not None
            union.update(wanted)
        return cls(types=union, limit=max(limits, default=1000),
                   buffer_pages=int(kwargs.get("buffer_pages", DEFAULT_BUFFER_PAGES)),
                   hold=kwargs.get("hold", DEFAULT_HOLD))

    def reader(self, *, handled: Collection[str] | None,
               accept: Callable[[Event], bool] | None = None) -> FeedReader:
        """Join the feed: ``handled`` are the decoded type names the reader handles (None:
        every event), ``accept`` keeps only some events (a partition's)."""
        state = _Reader(None if handled is None else frozenset(handled), accept)
        with self._cond:
            key = id(state)
            self._readers[key] = state
        return FeedReader(self, key, state)

    # -- used by FeedReader --------------------------------------------------------------
    def _leave(self, key: int) -> None:
        with self._cond:
            self._readers.pop(key, None)
            self._cond.notify_all()

    def _take(self, key: int, position: int, read: Callable[[int], Page]) -> SharedPage | None:
        """The shared page at ``position`` (reading it when it is the frontier), or None
        when ``position`` is not on the feed (the reader reads on its own)."""
        with self._cond:
            me = self._readers[key]
            me.wanted = position
            while True:
                found = self._pages.get(position)
                if found is not None:
                    me.wanted = found.page.end
                    self._cond.notify_all()
                    return found
                if self._reading == position:
                    self._cond.wait()
                    continue
                if self._frontier is None or (self._frontier != position
                                              and not self._anyone_on_feed(key)):
                    self._restart(position)  # nobody else is on it: follow this reader
                if self._frontier != position or self._reading is not None:
                    return None
                if len(self._pages) >= self.buffer_pages:
                    self._make_room()
                    continue  # the feed may have moved meanwhile: look again
                self._reading = position
                break
        try:
            page = read(position)
        except BaseException:
            with self._cond:
                self._reading = None
                self._cond.notify_all()
            raise
        shared = SharedPage(page, len(page.events) >= self.limit)
        with self._cond:
            self._reading = None
            if self._frontier == position and page.end != position:
                # (a page that did not move, at the head, is not kept: the next read at
                # that position must look again)
                self.pages_read += 1
                self._pages[position] = shared
                self._frontier = page.end
            me.wanted = page.end
            self._cond.notify_all()
        return shared

    def _anyone_on_feed(self, key: int) -> bool:
        return any(r.wanted is not None and (r.wanted in self._pages or r.wanted == self._frontier)
                   for k, r in self._readers.items() if k != key)

    def _restart(self, position: int) -> None:
        self._pages.clear()
        self._frontier = position

    def _make_room(self) -> None:
        """Drop the oldest page once the buffer is full, after waiting up to ``hold``
        seconds for its readers (called holding the condition)."""
        deadline = time.monotonic() + self.hold
        while len(self._pages) >= self.buffer_pages:
            oldest = next(iter(self._pages))
            waiting = any(r.wanted == oldest for r in self._readers.values())
            remaining = deadline - time.monotonic()
            if waiting and remaining > 0:
                self._cond.wait(remaining)
                continue
            self._pages.popitem(last=False)

    def oldest(self) -> int | None:
        """Where the buffer starts (None when empty)."""
        with self._cond:
            return next(iter(self._pages), None)


class FeedReader:
    """One processor's view of a :class:`SharedFeed`."""

    def __init__(self, feed: SharedFeed, key: int, state: _Reader) -> None:
        self.feed = feed
        self._key = key
        self._state = state

    @property
    def shared_pages(self) -> int:
        """Pages this reader took from the feed."""
        return self._state.shared

    @property
    def own_pages(self) -> int:
        """Pages this reader read on its own (it was off the feed)."""
        return self._state.alone

    def read(self, store: EventStore, position: int, *, types: Collection[str] | None,
             limit: int) -> tuple[Page, bool]:
        """The next page at ``position`` for this reader, and whether more may follow."""
        feed = self.feed
        shared = feed._take(self._key, position, lambda p: store.read_page(
            p, types=feed.types, limit=feed.limit))
        if shared is not None:
            self._state.shared += 1
            return self._view(shared), shared.full
        self._state.alone += 1
        oldest = feed.oldest()
        if oldest is not None and oldest != position:
            page = store.read_page(position, types=types, limit=limit, until=oldest)
            if page.events or page.end != position:
                return self._keep(page), len(page.events) >= limit or page.end == oldest
        page = store.read_page(position, types=types, limit=limit)
        return self._keep(page), len(page.events) >= limit

    def _view(self, shared: SharedPage) -> Page:
        """The shared page as this reader sees it (filtered once per set of handled types
        among readers without a partition filter)."""
        handled = self._state.handled
        if self._state.accept is not None or handled is None:
            return self._filter(shared.page)
        view = shared.views.get(handled)
        if view is None:  # (two readers racing here filter twice: harmless)
            view = shared.views[handled] = self._filter(shared.page)
        return view

    def _filter(self, page: Page) -> Page:
        handled, accept = self._state.handled, self._state.accept
        if handled is None and accept is None:
            return page
        events = [e for e in page.events
                  if (handled is None or e.type in handled) and (accept is None or accept(e))]
        return Page(events, page.end)

    def _keep(self, page: Page) -> Page:
        accept = self._state.accept
        if accept is None:
            return page
        return Page([e for e in page.events if accept(e)], page.end)

    def close(self) -> None:
        """Leave the feed (the others no longer wait for this reader)."""
        self.feed._leave(self._key)
