"""ISO 8601 times read from outside (the ``ISOTime`` of VOEvents)."""
import datetime

__all__ = ('utc',)


def utc(text):
    """The UTC time (an aware :class:`datetime.datetime`) of ISO 8601
    text; one without a time zone is taken to be UTC, as VOEvents mean.

    Raises
    ------
    ValueError
        The text is not an ISO 8601 time.
    """
    when = datetime.datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)
