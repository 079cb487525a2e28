"""Decoding and checking of received LVAlert payloads.

A listener hands each received payload to :func:`decode`, which returns the
alert as a :class:`dict` or raises :exc:`BadAlert` with a message fit for a
log line; :func:`is_from` tells whether the alert is about an object of the
configured GraceDb.
"""
import json
from urllib.parse import urlsplit

__all__ = ('BadAlert', 'decode', 'encode', 'is_from', 'self_link')


class BadAlert(ValueError):
    """A payload that is not an LVAlert document."""


def encode(alert):
    """Serialize an alert to the UTF-8 JSON text that goes on the wire.

    Parameters
    ----------
    alert : dict
        The alert.

    Returns
    -------
    str
    """
    if not isinstance(alert, dict):
        raise TypeError(f'an alert is a dict, not {type(alert).__name__}')
    return json.dumps(alert, separators=(',', ':'), allow_nan=False)


def decode(payload, max_bytes):
    """Decode a received payload.

    Parameters
    ----------
    payload : str or bytes
        What the transport delivered.
    max_bytes : int
        Larger payloads are refused before they are parsed, so that one
        runaway document cannot exhaust the listener's memory.

    Returns
    -------
    dict
        The alert.

    Raises
    ------
    BadAlert
        If the payload is too large, not UTF-8, not JSON, or not a JSON
        object.
    """
    if payload is None:
        raise BadAlert('empty item (no payload)')
    size = len(payload.encode('utf-8') if isinstance(payload, str)
               else payload)
    if size > max_bytes:
        raise BadAlert(f'payload of {size} bytes exceeds the limit of '
                       f'{max_bytes} bytes (lvalert_max_payload)')
    if isinstance(payload, bytes):
        try:
            payload = payload.decode('utf-8')
        except UnicodeDecodeError as e:
            raise BadAlert(f'payload is not UTF-8 text: {e}') from None
    try:
        alert = json.loads(payload)
    except json.JSONDecodeError as e:
        raise BadAlert(f'payload is not JSON: {e}; it begins with '
                       f'{payload[:60]!r}') from None
    except RecursionError:
        raise BadAlert('payload is JSON nested too deeply') from None
    if not isinstance(alert, dict):
        raise BadAlert(f'payload is JSON but not an object '
                       f'({type(alert).__name__})')
    return alert


def self_link(alert):
    """The URL of the alert's object: ``object.links.self`` or
    ``object.self``, or ``None`` if the alert carries neither."""
    obj = alert.get('object')
    if not isinstance(obj, dict):
        return None
    links = obj.get('links')
    if isinstance(links, dict) and isinstance(links.get('self'), str):
        return links['self']
    if isinstance(obj.get('self'), str):
        return obj['self']
    return None


def _normalize(url):
    parts = urlsplit(url)
    port = parts.port or {'http': 80, 'https': 443}.get(parts.scheme)
    path = parts.path if parts.path.endswith('/') else parts.path + '/'
    return parts.scheme.lower(), (parts.hostname or '').lower(), port, path


def is_from(alert, gracedb_url):
    """Whether the alert concerns an object of the GraceDb at gracedb_url.

    An alert without a self link (label alerts carry none) is taken to be
    ours: there is nothing to tell otherwise.

    Examples
    --------
    >>> api = 'https://gracedb.ligo.org/api/'
    >>> is_from({'object': {'links': {'self':
    ...     'https://gracedb.ligo.org/api/superevents/S1/'}}}, api)
    True
    >>> is_from({'object': {'self':
    ...     'https://gracedb-test.ligo.org/api/events/G1'}}, api)
    False
    >>> is_from({'uid': 'S1', 'alert_type': 'label_added'}, api)
    True
    """
    link = self_link(alert)
    if link is None:
        return True
    try:
        scheme, host, port, path = _normalize(link)
        ours = _normalize(gracedb_url)
    except ValueError:  # a malformed port, for instance
        return False
    return (scheme, host, port) == ours[:3] and path.startswith(ours[3])
