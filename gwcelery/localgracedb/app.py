"""The application factory of the local GraceDb (a Flask application)."""
import dataclasses
import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from .alerts import AlertSender
from .db import Database

__all__ = ('create_app', 'ServerState', 'DEFAULT_MAX_UPLOAD_BYTES')

log = logging.getLogger(__name__)

#: Largest request body accepted (an upload with its form), in bytes.
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024


@dataclasses.dataclass
class ServerState:
    """What the request handlers share."""

    db: Database
    alerts: AlertSender
    submitter: str
    """User name recorded as submitter and issuer (there is no login)."""
    public_url: str | None = None
    """API root written in links and alerts; ``None``: the address each
    request came to."""


def create_app(database_url, publisher=None,
               max_upload_bytes=DEFAULT_MAX_UPLOAD_BYTES,
               submitter='gwcelery', public_url=None):
    """Make the WSGI application.

    Parameters
    ----------
    database_url : str
        SQLAlchemy URL of the database; tables are created if missing.
    publisher : object, optional
        LVAlert publisher (``publish(node, message)``, ``close()``); without
        one, changes are not announced.
    max_upload_bytes : int
        Largest request body; a larger one is answered with 413.
    submitter : str
        Name recorded as the submitter of everything.
    public_url : str, optional
        API root (``http://host:port/api/``) to write in links and alerts,
        whatever address a client used; by default the address each request
        came to. LVAlert listeners compare these links with their own
        GraceDb URL, so it must be the address the workers use.

    Returns
    -------
    flask.Flask
    """
    from . import routes_events, routes_root, routes_superevents, views

    app = Flask(__name__)
    app.config['MAX_CONTENT_LENGTH'] = max_upload_bytes
    app.config['MAX_FORM_MEMORY_SIZE'] = max_upload_bytes
    app.json.sort_keys = False
    app.extensions['localgracedb'] = ServerState(
        Database(database_url), AlertSender(publisher), submitter,
        public_url and public_url.rstrip('/') + '/')
    app.register_blueprint(routes_root.blueprint)
    app.register_blueprint(routes_events.blueprint)
    app.register_blueprint(routes_superevents.blueprint)
    app.register_blueprint(views.blueprint)

    @app.errorhandler(HTTPException)
    def http_error(error):
        if error.code >= 500:
            log.error('%s %s: %s', request.method, request.path, error)
        elif error.code != 404:
            log.info('%s %s → %d: %s', request.method, request.path,
                     error.code, error.description)
        response = jsonify({'detail': error.description})
        response.status_code = error.code
        return response

    @app.errorhandler(Exception)
    def server_error(error):
        log.exception('Error handling %s %s', request.method, request.path)
        response = jsonify({'detail': f'internal error: '
                                      f'{type(error).__name__}'})
        response.status_code = 500
        return response

    return app
