"""A local GraceDb: the part of the GraceDb REST API that gwcelery uses.

This package is a small web service that speaks the REST API of GraceDb as
the ``ligo-gracedb`` client (2.16) uses it, so that the real client can talk
to it unchanged over real HTTP::

    from ligo.gracedb.rest import GraceDb
    client = GraceDb(service_url='http://127.0.0.1:8001/api/',
                     force_noauth=True)

It supports events (CBC from ``coinc.xml``, Burst from cWB/oLIB files,
External from GCN VOEvents), superevents, labels, logs with file uploads and
tags, versioned files, VOEvents built by the server, confirmation as GW, a
subset of the query language, HTML pages, and LVAlert messages for every
change. It does not implement authentication, permissions, EM observations,
signoffs, notices, pipeline-preferred events or the GWTC catalog; see
:doc:`/localgracedb`.

Modules: :mod:`.app` (the application factory), :mod:`.db` (engine and
transactions), :mod:`.models` (tables), :mod:`.ids` (GraceDb identifiers),
:mod:`.gpstime` (GPS ↔ UTC), :mod:`.vocabulary` (accepted names),
:mod:`.ligolw` and :mod:`.eventfiles` (reading uploaded event files, with
:mod:`gwcelery.util.xml`), :mod:`.voevent` (VOEvent XML), :mod:`.query`
and :mod:`.paging` (searches),
:mod:`.alerts` (LVAlert publishing), :mod:`.serialize` (JSON shapes),
:mod:`.routes_root`, :mod:`.routes_events`, :mod:`.routes_superevents`,
:mod:`.routes_common` and :mod:`.views` (HTTP resources and pages). The
``gwcelery localgracedb`` command (:mod:`gwcelery.tools.localgracedb`)
serves it with waitress.
"""
from .app import create_app

__all__ = ('create_app',)
