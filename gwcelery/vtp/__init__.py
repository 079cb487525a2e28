"""The VOEvent Transport Protocol (VTP), both ends of it.

VTP runs over TCP: every packet is a 4-byte big-endian length followed by an
XML document, either a VOEvent or a ``Transport`` message (``ack``, ``nak``,
``iamalive``). This package supports:

* :mod:`~gwcelery.vtp.parsing`: reading packets under the policy of
  :mod:`gwcelery.util.xml` (no DTD internal subset, no entities, no network
  access, a size limit) and building ``Transport`` messages;
* :mod:`~gwcelery.vtp.framing`: the length-prefixed framing, blocking and
  asyncio, with the same size limit;
* :mod:`~gwcelery.vtp.server`: a broadcaster that serves VOEvents to any
  number of whitelisted subscribers, with iamalive keep-alives and acks;
* :mod:`~gwcelery.vtp.feed`: the local GCN feed, a broadcaster that serves
  notices queued in Redis by ``gwcelery gcn replay``.

It does not implement VTP's ``authenticate`` role (signed packets): neither
GCN nor pygcn uses it.
"""
