"""``gwcelery lvalert``: publish alerts and list nodes by hand.

The server is :data:`~gwcelery.conf.lvalert_url` unless ``--url`` names
another; XMPP credentials come from the configuration or netrc.
"""
import json
import sys

import click

from ..lvalert import transport


def _transport(ctx):
    url = ctx.meta.get('gwcelery.lvalert_url')
    try:
        return transport.from_conf(ctx.obj.app.conf, url)
    except (ValueError, RuntimeError, OSError) as e:
        raise click.ClickException(str(e))


@click.group('lvalert')
@click.option('--url', metavar='URL',
              help='LVAlert server (default: the lvalert_url setting), '
                   'xmpp://HOST[:PORT] or redis://HOST[:PORT]/DB.')
@click.pass_context
def lvalert(ctx, url):
    """Publish LVAlert messages and list nodes."""
    ctx.meta['gwcelery.lvalert_url'] = url


@lvalert.command()
@click.argument('node')
@click.argument('file', type=click.File('rb'))
@click.option('--raw', is_flag=True,
              help='Publish the file as it is, even if it is not a JSON '
                   'object (to test listeners).')
@click.pass_context
def publish(ctx, node, file, raw):
    """Publish the alert in FILE (JSON; - for standard input) on NODE.

    The node is created if it does not exist. Prints the item id.
    """
    data = file.read()
    if raw:
        payload = data
    else:
        try:
            alert = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise click.ClickException(f'{file.name} is not JSON: {e}')
        if not isinstance(alert, dict):
            raise click.ClickException(
                f'{file.name} holds JSON but not an object; an alert is '
                'an object (use --raw to send it anyway)')
    with _transport(ctx) as lvalert:
        try:
            item_id = (lvalert.publish_raw(node, payload) if raw
                       else lvalert.publish(node, alert))
        except (OSError, RuntimeError, TimeoutError) as e:
            raise click.ClickException(f'publishing failed: {e}')
        except Exception as e:  # redis-py and slixmpp errors
            raise click.ClickException(
                f'publishing failed: {type(e).__name__}: {e}')
    click.echo(item_id)


@lvalert.command()
@click.pass_context
def nodes(ctx):
    """List the nodes on the server."""
    with _transport(ctx) as lvalert:
        try:
            names = lvalert.nodes()
        except Exception as e:
            raise click.ClickException(
                f'listing nodes failed: {type(e).__name__}: {e}')
    click.echo('\n'.join(names))
    sys.stdout.flush()
