"""What the superevent manager knows of the superevents around recent events.

Before it places an event, the manager needs every superevent whose
``t_0`` lies within the event's neighbour window. Asking GraceDb each time
would cost a request per alert, though the manager itself makes every
change that could alter the answer: it is the only writer of superevents'
times, preferred events and members. :class:`NeighbourCache` remembers the
answers of recent neighbour queries — the time spans they covered and the
superevents found — and the manager records in it the result of each of its
own writes, so that an event whose window lies within a span queried
recently needs no query.

Changes made by anyone else (a person editing a superevent in GraceDb's web
pages) are seen once a span expires, ``ttl`` seconds after its query. The
manager empties the cache whenever it cannot be sure of what it wrote (a
write that failed, a pass that stopped halfway); it lives in the manager's
process only, so a restarted worker starts with none.
"""
import time

__all__ = ('NeighbourCache',)


class NeighbourCache:
    """Superevents by ``t_0``, for spans queried within the last ``ttl`` s.

    Parameters
    ----------
    ttl : float
        Seconds a queried span stays valid; 0 or less disables the cache
        (:meth:`covers` is always false).
    clock : callable
        Monotonic time in seconds (for tests).
    """

    def __init__(self, ttl, clock=time.monotonic):
        self.ttl = float(ttl or 0)
        self.clock = clock
        self.spans = []
        self.superevents = {}

    def _prune(self):
        now = self.clock()
        self.spans = [span for span in self.spans if span[2] > now]
        # Keep only what a valid span vouches for.
        self.superevents = {
            sid: s for sid, s in self.superevents.items()
            if any(low <= s['t_0'] <= high for low, high, _ in self.spans)}

    def covers(self, start, end):
        """Whether one valid span holds all of ``[start, end]``."""
        if self.ttl <= 0:
            return False
        self._prune()
        return any(low <= start and end <= high
                   for low, high, _ in self.spans)

    def within(self, start, end):
        """The superevents known with ``t_0`` in ``[start, end]``."""
        return [s for s in self.superevents.values()
                if start <= s['t_0'] <= end]

    def store(self, start, end, superevents):
        """Record the answer of a query for ``t_0`` in ``[start, end]``."""
        if self.ttl <= 0:
            return
        self._prune()
        for sid in [sid for sid, s in self.superevents.items()
                    if start <= s['t_0'] <= end]:
            del self.superevents[sid]
        for superevent in superevents:
            self.put(superevent)
        self.spans.append((start, end, self.clock() + self.ttl))

    def put(self, superevent):
        """Record a superevent as the manager's own write left it."""
        if self.ttl > 0:
            self.superevents[superevent['superevent_id']] = superevent

    def clear(self):
        """Forget everything."""
        self.spans.clear()
        self.superevents.clear()
