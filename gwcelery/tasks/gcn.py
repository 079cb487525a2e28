"""GCN notices in: the listener and the ``@gcn.handler`` registry.

:func:`listen` is an eternal task that subscribes to the GCN VOEvent servers
of :data:`~gwcelery.conf.gcn_remote_address` with pygcn's client and hands
every notice to :data:`handler`, which runs the tasks registered for the
notice's type::

    from gcn import NoticeType
    from gwcelery.tasks import gcn

    @gcn.handler(NoticeType.FERMI_GBM_GND_POS, NoticeType.FERMI_GBM_FIN_POS,
                 queue='exttrig')
    def handle_fermi(payload):
        ...  # payload: the notice's raw XML bytes

pygcn's ``listen`` never returns, so it runs in a child process
(:class:`~gwcelery.eternal.EternalProcessTask`). pygcn parses packets with
lxml's default parser and allocates whatever length a packet announces;
in the child, its reader and parser are replaced by the size-limited one of
:mod:`gwcelery.vtp.framing` and :func:`gwcelery.vtp.parsing.parse_packet`
(the policy of :mod:`gwcelery.util.xml`), so a hostile or broken server
costs a reconnection, never memory or an expanded entity.

pygcn logs every connection failure (a server that hangs up, a refused
connection) as an error with a traceback; in the listener's log these are
one-line warnings (see ``_NetworkErrorsAsWarnings``), since they are
the ordinary life of a long-lived connection and pygcn reconnects by itself.

While connected, the listener records the server's address in Redis
(:mod:`gwcelery.status`, name ``gcn``) for the health check
(``_ConnectionRecord``).

:func:`check_echo` handles the LVC notice types (:data:`LVC_NOTICE_TYPES`):
GCN sends our own notices back, and each is compared byte for byte with
its VOEvent file in GraceDb (see :doc:`/alerts`).
"""
import difflib
import functools
import hashlib
import logging
import re
import threading
import time

import gcn as pygcn
from gcn import NoticeType
from gcn import voeventclient
from lxml import etree

from .. import app, claims, notice_records, status
from ..eternal import EternalProcessTask
from ..util.xml import XMLError, voevent_ivorn
from ..vtp.framing import recv_packet
from ..vtp.parsing import get_notice_type, parse_packet
from ..vtp.server import parse_address
from . import gracedb
from .core import DispatchHandler
from .timeline import note

__all__ = ('handler', 'listen', 'NoticeType', 'LVC_NOTICE_TYPES',
           'ECHO_TAG', 'MISMATCH_LABEL', 'check_echo')

log = logging.getLogger(__name__)

#: Seconds that the listener keeps retrying to hand a notice to the broker
#: before it gives up on that notice (pygcn has already acked it).
DISPATCH_RETRY_TIMEOUT = 60.0


class _GCNHandler(DispatchHandler):
    """Registry of GCN notice handlers, keyed by :class:`gcn.NoticeType`.

    :meth:`dispatch` takes the notice's raw XML bytes; every handler gets
    them as its one argument.
    """

    key_name = 'GCN notice type'

    def process_args(self, payload, root=None):
        """Read the notice type from the ``Packet_Type`` parameter.

        ``root`` is the payload already parsed, when the caller has it (the
        listener does); otherwise the payload is parsed with
        :func:`gwcelery.util.xml.parse`, with the limit
        :data:`~gwcelery.conf.vtp_max_packet_size`. A type that
        :class:`gcn.NoticeType` does not know is returned as a plain int
        (and finds no handler).

        Raises
        ------
        ValueError
            If the payload is refused (:class:`gwcelery.util.xml.XMLError`),
            is not a VOEvent with an IVORN, or has no integer type.
        """
        if isinstance(payload, str):
            payload = payload.encode('utf-8')
        if root is None:
            root = parse_packet(payload, app.conf.vtp_max_packet_size)
        ivorn = voevent_ivorn(root)
        value = get_notice_type(root)
        try:
            key = NoticeType(value)
        except ValueError:
            log.warning('Notice %s has type %d, which is not a known GCN '
                        'notice type', ivorn, value)
            key = value
        return key, (bytes(payload),), {}


handler = _GCNHandler()
"""The GCN notice handler registry; use it as a decorator (see above)."""


class _Shorten(logging.Filter):
    """Shortens long log arguments: pygcn logs whole payloads (base64) when
    they fail to parse, which may be a megabyte."""

    limit = 500

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(
                a[:self.limit] + (b'...' if isinstance(a, bytes) else '...')
                if isinstance(a, (str, bytes)) and len(a) > self.limit else a
                for a in record.args)
        return True


class _NetworkErrorsAsWarnings(logging.Filter):
    """Turns pygcn's records of network trouble into one warning line.

    pygcn logs a server that hangs up, a refused connection or a socket that
    will not close with ``log.exception``: an error and a traceback, from
    inside its reconnection loop, so that every restart of a GCN server
    filled the worker log with errors. They are :class:`OSError` (our
    :class:`~gwcelery.vtp.framing.FramingError` included), expected on a
    connection that lives for months, and pygcn reconnects after each one:
    such a record becomes a warning, ``"<pygcn's message>: <the error>"``,
    without the traceback.

    A packet refused by our parser reaches pygcn as an
    :class:`lxml.etree.XMLSyntaxError`; :func:`_parse_packet` has already
    logged why, so pygcn's record of it (the payload in base64, and a
    traceback) is kept for debug logs only, without the traceback.

    Anything else (an exception in the handler, say) stays as pygcn logged
    it.
    """

    def filter(self, record):
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, OSError):
            record.msg = f'{record.getMessage()}: {error}'
            record.args = ()
            record.levelno, record.levelname = logging.WARNING, 'WARNING'
        elif isinstance(error, etree.XMLSyntaxError):
            record.levelno, record.levelname = logging.DEBUG, 'DEBUG'
        else:
            return True
        record.exc_info = record.exc_text = None
        # The logger checked the level before the filter ran.
        return logging.getLogger(record.name).isEnabledFor(record.levelno)


_pygcn_log = logging.getLogger(__name__ + '.pygcn')
_pygcn_log.addFilter(_Shorten())
_pygcn_log.addFilter(_NetworkErrorsAsWarnings())


def _parse_packet(payload, max_size):
    """pygcn's parser: :func:`~gwcelery.vtp.parsing.parse_packet`, with the
    one exception pygcn handles.

    pygcn catches :class:`lxml.etree.XMLSyntaxError` only (anything else
    would end its loop, and the listener with it): on that, it closes the
    connection and reconnects, as it should, since a server that sends a
    bad packet cannot be trusted with the rest of the stream.
    """
    try:
        return parse_packet(payload, max_size)
    except XMLError as e:
        log.warning('Refused a packet of %d bytes from the GCN server: %s; '
                    'reconnecting', len(payload), e)
        raise etree.XMLSyntaxError(str(e), 0, 0, 0) from None


def _use_safe_reader(max_size):
    # pygcn 1.1.3 reads packets with voeventclient._recv_packet and parses
    # them with the module-level name fromstring; both are swapped here, in
    # the listener's own process only.
    for name in ('_recv_packet', 'fromstring'):
        if not hasattr(voeventclient, name):
            raise RuntimeError(
                f'pygcn {pygcn.__version__} has no voeventclient.{name}; '
                'the safe packet reader cannot be installed')
    voeventclient._recv_packet = functools.partial(
        recv_packet, max_size=max_size)
    voeventclient.fromstring = functools.partial(
        _parse_packet, max_size=max_size)


class _ConnectionRecord(threading.Thread):
    """Keeps the ``gcn`` status record while pygcn's socket is connected.

    pygcn opens each connection with ``voeventclient._open_socket`` and
    closes the socket when the connection ends; :meth:`install` wraps the
    former to note the socket, and this thread, every quarter of the record's
    time to live, renews the record while that socket is open and deletes
    it once it is closed. The thread dies with the listener's process, and
    the record expires after it.
    """

    def __init__(self, conf):
        super().__init__(name='gcn-status', daemon=True)
        self.recorder = status.Recorder('gcn', conf)
        self.sock = None
        self.server = None
        self.since = None

    def install(self):
        open_socket = voeventclient._open_socket

        def tracked(*args, **kwargs):
            sock = open_socket(*args, **kwargs)
            try:
                host, port = sock.getpeername()[:2]
            except OSError:
                return sock
            self.sock, self.server, self.since = sock, f'{host}:{port}', \
                time.time()
            self.refresh()
            return sock

        voeventclient._open_socket = tracked
        self.start()

    def refresh(self):
        sock = self.sock
        if sock is not None and sock.fileno() >= 0:
            self.recorder.update(server=self.server, since=self.since)
        else:
            self.recorder.clear()

    def run(self):
        while True:
            time.sleep(self.recorder.ttl / 4)
            self.refresh()


def _dispatch(payload, root):
    """pygcn's handler: dispatch, retrying while the broker is unreachable.

    pygcn has already acked the notice, so giving up loses it: keep trying
    for :data:`DISPATCH_RETRY_TIMEOUT` seconds, and log loudly if that fails.
    (:meth:`~gwcelery.tasks.core.DispatchHandler.dispatch` logs and drops
    undecodable payloads itself, so what it raises is a failure to reach
    the broker or the result backend.)
    """
    ivorn = root.get('ivorn')
    log.info('Received GCN notice %s', ivorn)
    deadline = time.monotonic() + DISPATCH_RETRY_TIMEOUT
    delay = 0.5
    while True:
        try:
            # pygcn parsed it already (with our safe parser): reuse that.
            handler.dispatch(payload, root=root)
            return
        except Exception as e:
            if time.monotonic() + delay > deadline:
                log.error('Lost GCN notice %s: could not dispatch it for '
                          '%.0f s: %r', ivorn, DISPATCH_RETRY_TIMEOUT, e)
                return
            log.warning('Could not dispatch GCN notice %s (%r); retrying '
                        'in %.1f s', ivorn, e, delay)
            time.sleep(delay)
            delay = min(2 * delay, 10.0)


def _addresses(setting):
    if isinstance(setting, str):
        setting = [setting]
    return [parse_address(address) for address in setting]


@app.task(base=EternalProcessTask, bind=True, shared=False)
def listen(self):
    """Listen for GCN notices and dispatch them to :data:`handler`.

    Runs pygcn's client against :data:`~gwcelery.conf.gcn_remote_address`;
    it acks each VOEvent, answers iamalive, and reconnects (with back-off up
    to :data:`~gwcelery.conf.gcn_max_reconnect_timeout`) after a silence of
    :data:`~gwcelery.conf.gcn_iamalive_timeout` or any error, including a
    malformed or oversized packet.
    """
    conf = app.conf
    addresses = _addresses(conf.gcn_remote_address)
    _use_safe_reader(conf.vtp_max_packet_size)
    _ConnectionRecord(conf).install()
    log.info('Listening for GCN notices from %s',
             ', '.join(f'{host}:{port}' for host, port in addresses))
    pygcn.listen(
        host=[host for host, _ in addresses],
        port=[port for _, port in addresses],
        ivorn=conf.gcn_client_ivorn,
        iamalive_timeout=conf.gcn_iamalive_timeout,
        max_reconnect_timeout=conf.gcn_max_reconnect_timeout,
        handler=_dispatch, log=_pygcn_log)


# -- The echo check of our own notices -------------------------------------------

#: Notice types of LVC notices, which GCN sends back to us and
#: :func:`check_echo` compares with what GraceDb holds.
LVC_NOTICE_TYPES = (NoticeType.LVC_PRELIMINARY, NoticeType.LVC_INITIAL,
                    NoticeType.LVC_UPDATE, NoticeType.LVC_EARLY_WARNING,
                    NoticeType.LVC_RETRACTION)

#: Tag of the VOEvent's log entry once GCN has sent it back unchanged.
ECHO_TAG = 'gcn_received'

#: Label of a superevent of which GCN sent back a notice that differs.
MISMATCH_LABEL = 'GCN_MISMATCH'

_SUPEREVENT_ID = re.compile(r'^(?:[MT]?S\d{6}[a-z]+|[MT]?GW\d{6}[a-z]*)$')


def _echo_target(root):
    """``(superevent id, ivorn)`` of an LVC notice, or ``None`` if it is
    not about a superevent."""
    param = root.find("./What/Param[@name='GraceID']")
    graceid = param.get('value') if param is not None else None
    if not graceid or not _SUPEREVENT_ID.match(graceid):
        return None
    return graceid, voevent_ivorn(root)


def _compare(superevent_id, ivorn, payload):
    """Compare the echo with GraceDb's file; return ``'match'``,
    ``'mismatch'`` or ``None`` (GraceDb has no such VOEvent)."""
    voevents = gracedb.get_voevents(superevent_id)
    ours = next((v for v in voevents if v.get('ivorn') == ivorn), None)
    if ours is None:
        return None
    filename = f'{ours["filename"]},{ours["file_version"]}'
    original = gracedb.download(filename, superevent_id)
    if original == payload:
        entry = next(e for e in gracedb.get_log(superevent_id)
                     if e.get('filename') == ours['filename']
                     and e.get('file_version') == ours['file_version'])
        gracedb.create_tag(ECHO_TAG, entry['N'], superevent_id)
        log.info('%s: GCN sent back %s unchanged', superevent_id, ivorn)
        return 'match'
    diff = ''.join(difflib.unified_diff(
        original.decode('utf-8', 'replace').splitlines(keepends=True),
        payload.decode('utf-8', 'replace').splitlines(keepends=True),
        fromfile=f'{filename} (GraceDb)', tofile=f'{ivorn} (from GCN)'))
    name = ours['filename'].rsplit('.', 1)[0] + '.gcn.diff'
    gracedb.upload(diff.encode(), name, superevent_id,
                   f'The notice {ivorn} that GCN sent back differs from '
                   f'{filename}: see {name}', ['em_follow'])
    gracedb.create_label(MISMATCH_LABEL, superevent_id)
    log.error('%s: GCN sent back %s with differences from %s (%d bytes of '
              'diff uploaded as %s)', superevent_id, ivorn, filename,
              len(diff), name)
    return 'mismatch'


@handler(*LVC_NOTICE_TYPES, bind=True, shared=False, acks_late=True,
         reject_on_worker_lost=True)
def check_echo(self, payload):
    """Compare an LVC notice that GCN sent back with its VOEvent file in
    GraceDb, byte for byte.

    Unchanged, the VOEvent's log entry is tagged :data:`ECHO_TAG`; else
    the unified diff is uploaded to the superevent (``<name>.gcn.diff``),
    the superevent is labelled :data:`MISMATCH_LABEL` and an error is
    logged. Notices about something else than one of our superevents'
    VOEvents are logged and ignored; each distinct payload is checked
    once.

    Parameters
    ----------
    payload : bytes
        The notice's raw XML.
    """
    root = parse_packet(payload, app.conf.vtp_max_packet_size)
    target = _echo_target(root)
    if target is None:
        log.info('LVC notice %s is not about a superevent: no echo check',
                 root.get('ivorn'))
        return
    superevent_id, ivorn = target
    what = f'echo:{ivorn}:{hashlib.sha256(payload).hexdigest()[:16]}'
    held = claims.claim(superevent_id, what, self.request.id, 600)
    if held.state != 'mine':
        log.info('%s: echo of %s already checked', superevent_id, ivorn)
        return
    try:
        outcome = _compare(superevent_id, ivorn, payload)
    except Exception as exc:
        if gracedb.is_transient(exc) and \
                self.request.retries < app.conf.gracedb_max_retries:
            raise self.retry(exc=exc, countdown=gracedb.retry_delay(
                self.request.retries))
        claims.release(superevent_id, what, self.request.id)
        if isinstance(exc, gracedb.GraceDbError) or gracedb.is_transient(exc):
            log.error('%s: cannot check the echo of %s: %s', superevent_id,
                      ivorn, exc)
            return
        raise
    if outcome is None:
        log.warning('%s: GCN sent back %s, which is not one of its VOEvents '
                    'in GraceDb', superevent_id, ivorn)
    else:
        kind = notice_records.find_ivorn(
            notice_records.all_of(superevent_id), ivorn) or \
            ivorn.rpartition('#')[2]
        note(superevent_id, f'{kind}/echo_checked', outcome)
    claims.finish(superevent_id, what, outcome or 'unknown')
