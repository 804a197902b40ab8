"""Push wake-ups for the PostgreSQL store: a LISTEN thread, a paced NOTIFY thread, and the
policy that lets a quiet store's appends notify in their own statement instead.

The two threads own a dedicated connection each (never one from the pool), open it
lazily, and belong to one process: the store makes new ones after a fork. A notification
is only a hint that something may be readable; waiters always check the table.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger("esctl.postgresql")
Connect = Callable[[], "psycopg.Connection[Any]"]
_TICK = 0.25  # how often the threads look at their stop flag


class Listener:
    """``LISTEN`` on one channel from a daemon thread; waiters block on a generation counter.

    The counter moves on every notification and after every (re)connection, since
    notifications sent while the connection was down are lost. A dead connection is
    noticed when reading from it fails, or by a ``SELECT 1`` every ``ping_interval``.
    """

    def __init__(self, connect: Connect, channel: str, *, ping_interval: float = 5.0) -> None:
        self._connect = connect
        self._listen = sql.SQL("LISTEN {}").format(sql.Identifier(channel))
        self.ping_interval = ping_interval
        self._cond = threading.Condition()
        self._generation = 0
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.backend_pid: int | None = None

    @property
    def generation(self) -> int:
        """Moves forward whenever something may have been committed."""
        with self._cond:
            return self._generation

    @property
    def listening(self) -> bool:
        """True while the LISTEN connection is up."""
        return self._listening.is_set()

    def start(self, timeout: float) -> None:
        """Start the thread (once) and give it up to ``timeout`` seconds to LISTEN."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="esctl-listen", daemon=True)
            self._thread.start()
        self._listening.wait(timeout)

    def wait_changed(self, generation: int, timeout: float) -> bool:
        """Block until the generation moves past ``generation``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._generation != generation or self._stop.is_set(), timeout
            ) and not self._stop.is_set()

    def close(self) -> None:
        """Stop the thread; it closes its connection within a fraction of a second."""
        self._stop.set()
        self._bump()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2 * _TICK)

    def _bump(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(self._listen)
                    self.backend_pid = conn.info.backend_pid
                    self._listening.set()
                    self._bump()
                    delay = 0.1
                    self._serve(conn)
            except psycopg.Error as e:
                log.debug("esctl listener connection lost (%s); reconnecting", e)
            finally:
                self._listening.clear()
                self.backend_pid = None
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        last_seen = time.monotonic()
        while not self._stop.is_set():
            for _ in conn.notifies(timeout=_TICK):
                self._bump()
                last_seen = time.monotonic()
            if time.monotonic() - last_seen >= self.ping_interval:
                conn.execute("SELECT 1")
                last_seen = time.monotonic()


class TokenBucket:
    """The notifiers' pacing: ``burst`` tokens at once, refilled at ``rate`` a second."""

    __slots__ = ("burst", "filled_at", "rate", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.filled_at = time.monotonic()

    def take(self) -> bool:
        """Spend a token if the bucket has one (refilling it for the time gone by)."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.filled_at) * self.rate)
        self.filled_at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def empty(self) -> None:
        """No tokens from now: a busy writer stays busy through its wait and its send."""
        self.tokens, self.filled_at = 0.0, time.monotonic()


class CommitNotify:
    """Whether an append that commits on its own should NOTIFY in its own statement.

    That is the quickest wake-up: listeners get the notification at the commit, with no
    second transaction after it (``bench/push_latency.py``). Its price is PostgreSQL's
    notify lock: a notifying transaction holds it from before its commit record through
    the WAL flush, so notifying commits run one at a time on the whole server (8 raw
    writers flat out lost 38 % of their throughput that way:
    ``bench/notify_contention.py``). A writer never queues behind its own commits, only
    behind other writers', so an append notifies in its statement only while

    - this store object commits less often than ``rate`` times a second (its own pace, a
      moving average, and a token bucket for bursts, as the notifier's), and
    - the others are quiet: :attr:`load`, the rate of the events *others* append (the
      ids between this store object's appends that are not its own) times this object's
      append time (an upper bound on the flush that holds the lock), stays under
      ``max_load``: an estimate, from above, of the share of time other writers would
      hold the lock.

    Otherwise the :class:`Notifier` thread notifies, as for appends inside a transaction.
    A lone writer at 200 commits a second notifies in each, however slow its disk; 4
    threads sharing one store object count each other as others. The estimate counts
    events, not commits, so other stores appending large batches count as busy; it does
    not see other stores, nor other programs' NOTIFYs, on the same server.
    After the server refuses a notification (:func:`notify_refused`) the policy stays
    off for ``cooldown`` seconds. Estimates are moving averages (weight ``smoothing`` for
    each new append); updates from several threads may race, which only blurs them.
    """

    __slots__ = ("_bucket", "_interval", "_last", "_off_until", "_rate", "_seconds",
                 "cooldown", "max_load", "smoothing")

    def __init__(self, *, rate: float = 500.0, burst: int = 8, max_load: float = 0.4,
                 smoothing: float = 0.2, cooldown: float = 60.0) -> None:
        self._bucket = TokenBucket(rate, burst)
        self.max_load = max_load
        self.smoothing = smoothing
        self.cooldown = cooldown
        self._rate = 0.0  # the ids others take a second
        self._seconds = 0.0  # this object's append time
        self._interval = 0.0  # seconds between this object's appends (0: not known yet)
        self._last = (0, 0.0)  # the newest id seen and when (one tuple: read at once)
        self._off_until = 0.0

    @property
    def load(self) -> float:
        """Estimated share of time other writers' notifying commits would hold the lock."""
        return self._rate * self._seconds

    @property
    def pace(self) -> float:
        """This store object's appends a second (a moving average)."""
        return 1.0 / self._interval if self._interval > 0 else 0.0

    def wanted(self) -> bool:
        """Should the next autocommit append notify in its statement?"""
        if self._off_until and time.monotonic() < self._off_until:
            return False
        return (self.load < self.max_load and self.pace < self._bucket.rate
                and self._bucket.take())

    def observe(self, last_id: int, count: int, started: float, ended: float) -> None:
        """An append of ``count`` events from ``started`` to ``ended`` (monotonic seconds)
        was given ids up to ``last_id``."""
        weight = self.smoothing
        self._seconds += weight * (ended - started - self._seconds)
        previous_id, previous_at = self._last
        if previous_id and ended > previous_at:
            elapsed = ended - previous_at
            rate = max(0, last_id - previous_id - count) / elapsed
            self._rate += weight * (rate - self._rate)
            self._interval += (weight if self._interval else 1.0) * (elapsed - self._interval)
        self._last = (last_id, ended)

    def refused(self) -> None:
        """The server refused a notification: leave notifying to the thread a while."""
        self._off_until = time.monotonic() + self.cooldown


#: What ``pg_notify`` raises: a full notification queue (54000, "too many notifications
#: in the NOTIFY queue", behind a listener that stopped reading) or a channel or payload
#: it refuses (22023).
_NOTIFY_SQLSTATES = frozenset({"54000", "22023"})


def notify_refused(error: BaseException) -> bool:
    """True when ``error`` (a library error from an append that notified in its statement)
    is the server refusing the notification: the append was rolled back whole, and is
    sent again without it."""
    cause = error.__cause__
    return isinstance(cause, psycopg.Error) and cause.sqlstate in _NOTIFY_SQLSTATES


class Notifier:
    """Sends ``pg_notify`` after commits, from its own thread and connection.

    A writer only raises a flag (:meth:`poke`); the thread sends one notification for all
    the commits made since its previous one. Pacing is a token bucket (``burst`` at once,
    refilled at ``rate`` a second):

    - while the process commits less often than ``rate`` times a second, every commit is
      notified at once, so listeners wake within a round trip of it;
    - once it commits faster (the bucket runs dry), it is a busy writer: one notification
      every ``busy_interval`` seconds covers all its commits, until its pace drops below
      ``rate`` again. Each notification costs about as much as an append, so a busy
      writer that notified every commit would lose a fifth of its throughput or more.

    Appends inside a transaction never NOTIFY themselves, nor does an autocommit append
    unless :class:`CommitNotify` says the store is quiet, so busy writers never queue on
    the database-wide lock that NOTIFY takes at commit.
    """

    def __init__(self, connect: Connect, channel: str, *, rate: float = 500.0,
                 burst: int = 8, busy_interval: float = 0.025) -> None:
        self._connect = connect
        self._channel = channel
        self.busy_interval = busy_interval
        self._bucket = TokenBucket(rate, burst)
        self._cond = threading.Condition()
        self._pending = False
        self._stop = False
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection[Any] | None = None

    def poke(self) -> None:
        """Ask for a notification soon (cheap: no I/O on the caller's thread)."""
        if self._pending:  # a send is due after this moment anyway
            return
        with self._cond:
            self._pending = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="esctl-notify", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """Send what is pending, then stop."""
        with self._cond:
            self._stop = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stop)
                if not self._pending and self._stop:
                    break
                busy = not self._bucket.take()
                if busy:  # let this notification cover more commits
                    self._cond.wait_for(lambda: self._stop, self.busy_interval)
                self._pending = False
            self._send()
            if busy:  # stay busy until the pace drops: no tokens for the wait or the send
                with self._cond:
                    self._bucket.empty()
        if self._conn is not None:
            self._conn.close()

    def _send(self) -> None:
        for _attempt in range(2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                    # A notifying transaction gets an xid and so a commit record; a hint
                    # need not wait for it to reach the disk.
                    self._conn.execute("SET synchronous_commit = off")
                self._conn.execute("SELECT pg_notify(%s, '')", (self._channel,))
                return
            except psycopg.Error as e:
                log.debug("esctl notify failed (%s); readers fall back to polling", e)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
