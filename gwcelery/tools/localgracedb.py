"""``gwcelery localgracedb``: serve the local GraceDb (:mod:`gwcelery.localgracedb`)."""
import logging
import signal
import sys
from urllib.parse import urlsplit

import click

from .. import deployment
from ..util.network import is_loopback

__all__ = ('localgracedb',)

log = logging.getLogger(__name__)


def _local_gracedb_url(conf):
    """The configured gracedb_url if it is plain HTTP on this machine."""
    parts = urlsplit(conf.gracedb_url)
    if parts.scheme == 'http' and parts.port and is_loopback(parts.hostname):
        return conf.gracedb_url
    return None


def _default_port(conf):
    """The port that the configuration's workers will call: that of
    gracedb_url if it is plain HTTP on this machine, else that of the local
    preset (8001)."""
    url = _local_gracedb_url(conf)
    if url:
        return urlsplit(url).port
    from ..conf import local
    return urlsplit(local.gracedb_url).port or 8001


def _publisher(conf, lvalert_url):
    """The LVAlert publisher, or ``None`` (logged) if there is none."""
    if lvalert_url == 'none':
        log.warning('LVAlert publishing is disabled (--lvalert-url none)')
        return None
    from ..lvalert import transport
    try:
        return transport.from_conf(conf, lvalert_url)
    except Exception as e:
        # Serving without alerts beats not serving at all.
        log.error('No LVAlert publisher (%s: %s); changes will not be '
                  'announced', type(e).__name__, e)
        return None


@click.command('localgracedb')
@click.option('--host', default='127.0.0.1', show_default=True,
              help='Address to bind (loopback by default: there is no '
                   'authentication).')
@click.option('--port', type=int, default=None,
              help='Port to listen on (default: the port of gracedb_url '
                   'when that is on this machine, else 8001 as in the local '
                   'preset).')
@click.option('--database', default=None,
              help='SQLAlchemy database URL (default: an SQLite file '
                   'localgracedb.sqlite in the local deployment\'s folder).')
@click.option('--max-upload-size', type=int, default=None,
              help='Largest request body in bytes (default 64 MiB).')
@click.option('--threads', type=int, default=8, show_default=True,
              help='Request-handling threads.')
@click.option('--public-url', default=None,
              help='API root to write in links and alerts (default: '
                   'gracedb_url when the port comes from it, else the '
                   'address each request came to).')
@click.option('--lvalert-url', default=None,
              help='Where to publish LVAlert messages (default: the '
                   'lvalert_url setting; "none" disables publishing).')
@click.pass_context
def localgracedb(ctx, host, port, database, max_upload_size, threads,
                 public_url, lvalert_url):
    """Serve a local GraceDb: the REST API that ligo-gracedb speaks."""
    import waitress

    from ..localgracedb.app import DEFAULT_MAX_UPLOAD_BYTES, create_app

    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format='[%(asctime)s: %(levelname)s/%(name)s] %(message)s')
    conf = ctx.obj.app.conf
    if port is None:
        port = _default_port(conf)
        # The workers' address is the one that links must show, so that
        # their LVAlert listener recognizes alerts as coming from here.
        public_url = public_url or _local_gracedb_url(conf)
    if database is None:
        folder = deployment.state_dir(conf)
        folder.mkdir(parents=True, exist_ok=True)
        database = f'sqlite:///{folder / "localgracedb.sqlite"}'
    max_upload_size = max_upload_size or DEFAULT_MAX_UPLOAD_BYTES
    publisher = _publisher(conf, lvalert_url)
    app = create_app(database, publisher=publisher,
                     max_upload_bytes=max_upload_size, public_url=public_url)
    # Passwords in database URLs stay out of the log.
    from sqlalchemy.engine import make_url
    safe = make_url(database).render_as_string(hide_password=True)
    log.info('Local GraceDb on http://%s:%d/api/ with database %s',
             host, port, safe)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        waitress.serve(app, host=host, port=port, threads=threads,
                       max_request_body_size=max_upload_size + 1024 * 1024,
                       ident='localgracedb')
    finally:
        app.extensions['localgracedb'].alerts.close()
        app.extensions['localgracedb'].db.dispose()
