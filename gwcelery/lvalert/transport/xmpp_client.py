"""What the XMPP listener and publisher clients share: transport security,
capped reconnection back-off, a clean shutdown, and error conditions."""
import asyncio

from ...util.network import is_loopback

__all__ = ('PUBSUB_NS', 'BackoffMixin', 'configure', 'close_client',
           'condition')

PUBSUB_NS = 'http://jabber.org/protocol/pubsub'


def configure(client, host, max_backoff):
    """Transport security and back-off of a slixmpp client of host."""
    loopback = is_loopback(host)
    client.enable_direct_tls = False
    client.enable_starttls = not loopback
    client.enable_plaintext = loopback
    # Only on loopback: SCRAM without TLS exposes nothing on the network.
    client.plugin['feature_mechanisms'].unencrypted_scram = loopback
    client.max_backoff = max_backoff


async def close_client(client, wait=2.0):
    """Disconnect a slixmpp client and end its background tasks, so that
    its event loop can be closed cleanly."""
    client.stopping = True
    client.cancel_connection_attempt()
    if client.is_connected():
        client.disconnect(wait=wait)
        try:
            await asyncio.wait_for(client.disconnected, wait + 1)
        except asyncio.TimeoutError:
            client.abort()
    task, client._run_out_filters = client._run_out_filters, None
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def condition(error):
    """The XMPP error condition of an :exc:`slixmpp.exceptions.IqError`
    (``'item-not-found'``, ``'conflict'``, …). Log this, not the error
    itself, whose text quotes the whole stanza."""
    return error.iq['error']['condition']


class BackoffMixin:
    """Caps slixmpp's exponential reconnection delay (up to 300 s by
    default) at ``max_backoff``."""

    max_backoff = 30.0

    def reschedule_connection_attempt(self):
        future = super().reschedule_connection_attempt()
        # The rescheduled attempt reads the delay when it starts running.
        self._connect_loop_wait = min(self._connect_loop_wait,
                                      self.max_backoff)
        return future
