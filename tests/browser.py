"""Headless Chromium driven over the Chrome DevTools Protocol.

Debian's ``chromium`` with ``--remote-debugging-port=0`` writes the port it
chose into ``DevToolsActivePort`` in its profile folder; a page's
WebSocket takes JSON commands (``Page.navigate``, ``Runtime.evaluate``,
``Page.captureScreenshot``) and sends events (``Page.loadEventFired``).
Tornado, which Flower already brings, is the WebSocket client, so no
driver program or extra package is needed.
"""
import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request

from gwcelery.util.waiting import wait_for

__all__ = ('Chromium',)


class Chromium:
    """One headless Chromium with one page.

    Parameters
    ----------
    binary : str
        Path of ``chromium``.
    profile : pathlib.Path
        An empty folder for its profile.
    """

    def __init__(self, binary, profile, width=1280, height=1600):
        self.profile = profile
        self.proc = subprocess.Popen(
            [binary, '--headless', '--no-sandbox', '--disable-gpu',
             '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--no-first-run',
             '--remote-debugging-address=127.0.0.1',
             '--remote-debugging-port=0', f'--user-data-dir={profile}',
             f'--window-size={width},{height}', 'about:blank'],
            stdout=subprocess.DEVNULL, stderr=open(profile / 'stderr', 'w'),
            start_new_session=True)
        port_file = profile / 'DevToolsActivePort'

        def port():
            assert self.proc.poll() is None, (profile / 'stderr').read_text()
            lines = port_file.read_text().split() if port_file.exists() \
                else []
            return int(lines[0]) if lines else None

        self.port = wait_for(port, timeout=60, interval=0.1,
                             what='Chromium\'s DevTools port')
        with urllib.request.urlopen(
                f'http://127.0.0.1:{self.port}/json/list', timeout=10) as r:
            page, = [t for t in json.load(r) if t['type'] == 'page']
        self.loop = asyncio.new_event_loop()
        self.ids = itertools.count(1)
        self.events = []
        self.ws = self.loop.run_until_complete(
            self._connect(page['webSocketDebuggerUrl']))
        self.call('Page.enable')
        self.call('Runtime.enable')

    async def _connect(self, url):
        from tornado.websocket import websocket_connect
        return await websocket_connect(url, max_message_size=64 << 20)

    async def _call(self, method, params, timeout):
        ident = next(self.ids)
        await self.ws.write_message(json.dumps(
            {'id': ident, 'method': method, 'params': params}))
        deadline = time.monotonic() + timeout
        while True:
            message = await asyncio.wait_for(
                self.ws.read_message(), max(0.1, deadline - time.monotonic()))
            assert message is not None, 'Chromium closed the connection'
            message = json.loads(message)
            if message.get('id') == ident:
                assert 'error' not in message, message['error']
                return message.get('result', {})
            if 'method' in message:
                self.events.append(message)

    def call(self, method, timeout=30, **params):
        """Send a DevTools command; return its result."""
        return self.loop.run_until_complete(
            self._call(method, params, timeout))

    async def _wait_event(self, method, timeout):
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event['method'] == method:
                    return self.events.pop(i)
            message = await asyncio.wait_for(
                self.ws.read_message(), max(0.1, deadline - time.monotonic()))
            assert message is not None, 'Chromium closed the connection'
            message = json.loads(message)
            if 'method' in message:
                self.events.append(message)

    def load(self, url, timeout=60):
        """Open url and wait for its load event (images included)."""
        self.events.clear()
        result = self.call('Page.navigate', url=url)
        assert 'errorText' not in result, result
        self.loop.run_until_complete(
            self._wait_event('Page.loadEventFired', timeout))

    def evaluate(self, expression):
        """The JSON value of a JavaScript expression in the page."""
        result = self.call('Runtime.evaluate', expression=expression,
                           returnByValue=True, awaitPromise=True)
        assert 'exceptionDetails' not in result, result['exceptionDetails']
        return result['result'].get('value')

    def screenshot(self, path):
        """Save a PNG of the whole page."""
        data = self.call('Page.captureScreenshot', format='png',
                         captureBeyondViewport=True)['data']
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
            self.loop.close()
        finally:
            from .conftest import _stop_process
            _stop_process(self.proc, 15)
            # Its renderer and helper processes, if any outlived it.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            shutil.rmtree(self.profile, ignore_errors=True)
