"""LVAlert: GraceDb's publish-subscribe alerts, in and out.

GraceDb announces every change to an event or superevent as an *alert*, a
JSON document ``{"uid", "alert_type", "data", "object", ...}`` published on
a *node* named after the event's group and pipeline (``cbc_gstlal``) or the
superevent category (``superevent``). This package moves those documents
between GraceDb and gwcelery over one of several transports, chosen by the
scheme of the configured :data:`~gwcelery.conf.lvalert_url`
(:mod:`.transport`):

``xmpp://HOST[:PORT]``
    XMPP publish-subscribe (XEP-0060) on the service ``pubsub.HOST``, as
    the production LVAlert servers run it (:mod:`.transport.xmpp`).
``redis://HOST[:PORT]/DB``
    Redis Streams on the deployment's own Redis, one stream per node: the
    embedded transport of the local deployment
    (:mod:`.transport.redis_streams`).

Modules:

:mod:`.transport`
    The transports, one interface (listen, publish, list nodes), by URL
    scheme.
:mod:`.alerts`
    Encoding, and decoding and checking of received payloads (size, JSON,
    GraceDb).
:mod:`.credentials`
    User name and password from the arguments, the configuration or netrc.

The Celery side (the ``@lvalert.handler`` registry and the eternal
``listen`` task) is :mod:`gwcelery.tasks.lvalert`.
"""
