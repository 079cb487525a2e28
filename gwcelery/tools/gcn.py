"""``gwcelery gcn``: the local GCN feed and notice replay.

``gwcelery gcn feed`` runs :mod:`gwcelery.vtp.feed`, a VOEvent server that
stands in for GCN; ``gwcelery gcn replay FILE...`` queues notices for it in
Redis (the broker), so that they reach every listener connected to the feed.
With an upstream broadcaster (``--upstream``, or the
:data:`~gwcelery.conf.gcn_feed_upstream_address` setting), the feed also
serves every notice that broadcaster sends it.
"""
import asyncio
import logging
import signal
from pathlib import Path

import click

from ..util.xml import XMLError
from ..vtp import feed as _feed
from ..vtp.server import Broadcaster


@click.group('gcn')
def gcn():
    """The local GCN feed: serve and replay GCN notices."""


@gcn.command()
@click.option('--address', metavar='HOST:PORT',
              help='Where to listen (default: the gcn_feed_address setting).')
@click.option('--whitelist', multiple=True, metavar='ADDRESS',
              help='Address, network or host name allowed to listen; may be '
                   'repeated (default: 127.0.0.1).')
@click.option('--iamalive-interval', type=float, default=60.0,
              show_default=True, help='Seconds between iamalive messages.')
@click.option('--upstream', metavar='HOST:PORT',
              help='VOEvent broadcaster to subscribe to, serving what it '
                   'sends (default: the gcn_feed_upstream_address setting).')
@click.option('--no-upstream', is_flag=True,
              help='Subscribe to no broadcaster, whatever the setting.')
@click.option('-l', '--loglevel', default='INFO', show_default=True,
              type=click.Choice(['DEBUG', 'INFO', 'WARNING', 'ERROR']))
@click.pass_context
def feed(ctx, address, whitelist, iamalive_interval, upstream, no_upstream,
         loglevel):
    """Serve notices queued by "gwcelery gcn replay", and those of an
    upstream broadcaster, to GCN listeners."""
    conf = ctx.obj.app.conf
    upstream = None if no_upstream else (
        upstream or conf.gcn_feed_upstream_address)
    logging.basicConfig(
        level=loglevel, format='[%(asctime)s: %(levelname)s] %(message)s')
    broadcaster = Broadcaster(
        address or conf.gcn_feed_address, whitelist or ('127.0.0.1',),
        ivorn='ivo://gwcelery/local-feed',
        iamalive_interval=iamalive_interval,
        max_packet_size=conf.vtp_max_packet_size, name='GCN feed')

    async def main():
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await _feed.run(broadcaster, conf.broker_url, stopping, upstream)

    try:
        asyncio.run(main())
    except OSError as e:
        raise click.ClickException(f'cannot serve on {broadcaster.host}:'
                                   f'{broadcaster.port}: {e}')


@gcn.command()
@click.argument('files', nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def replay(ctx, files):
    """Queue GCN notices (VOEvent XML files) for the running feed.

    Every file is checked first; nothing is queued if one is not a VOEvent.
    """
    conf = ctx.obj.app.conf
    payloads = []
    for path in files:
        payload = path.read_bytes()
        try:
            ivorn = _feed.check_notice(payload, conf.vtp_max_packet_size)
        except XMLError as e:
            raise click.ClickException(f'{path}: not a usable notice: {e}')
        click.echo(f'{path}: {ivorn}')
        payloads.append(payload)
    try:
        waiting = _feed.enqueue(conf.broker_url, payloads)
    except Exception as e:  # redis.RedisError and socket errors alike
        raise click.ClickException(f'cannot queue the notices in Redis: {e}')
    click.echo(f'Queued {len(payloads)} notice(s); {waiting} waiting for the '
               'feed (they go out once a listener is connected to it).')
