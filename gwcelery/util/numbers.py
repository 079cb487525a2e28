"""Numbers read from outside (notices, uploaded files): finite or refused."""
import math

__all__ = ('finite',)


def finite(value, what):
    """``value`` as a finite :class:`float`.

    Parameters
    ----------
    value : object
        A number or its text.
    what : str
        What it is, for the message.

    Raises
    ------
    ValueError
        It is not a number, or it is infinite or NaN.
    """
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{what} is not a number: {value!r}') from None
    if not math.isfinite(result):
        raise ValueError(f'{what} is not finite: {value!r}')
    return result
