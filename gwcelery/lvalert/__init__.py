"""LVAlert: GraceDb's publish-subscribe alerts, in and out.

GraceDb announces every change to an event or superevent as an *alert*, a
JSON document ``{"uid", "alert_type", "data", "object", ...}`` published on
a *node* named after the event's group and pipeline (``cbc_gstlal``) or the
superevent category (``superevent``). This package moves those documents
between GraceDb and gwcelery over one of two transports, chosen by the
scheme of the configured :data:`~gwcelery.conf.lvalert_url`:

``xmpp://HOST[:PORT]``
    XMPP publish-subscribe (XEP-0060) on the service ``pubsub.HOST``, as
    the production LVAlert servers run it (:mod:`.xmpp`).
``redis://HOST[:PORT]/DB``
    Redis Streams on the deployment's own Redis, one stream per node: the
    embedded transport of the local deployment (:mod:`.redis_streams`).

Modules:

:mod:`.alerts`
    Decoding and checking of received payloads (size, JSON, GraceDb).
:mod:`.transports`
    Parsing of the server URL and choice of transport.
:mod:`.publisher`
    :class:`~.publisher.Publisher`, which creates nodes and publishes.
:mod:`.redis_streams`, :mod:`.xmpp`
    The publisher and listener halves of each transport.
:mod:`.credentials`
    User name and password from the arguments, the configuration or netrc.

The Celery side (the ``@lvalert.handler`` registry and the eternal
``listen`` task) is :mod:`gwcelery.tasks.lvalert`.
"""
