"""The browser tests' server survives browsers that hang up mid-download.

A back gesture or a navigation can reset the connection while werkzeug's server is still
draining the request; the server then skips closing the response, and the static file Flask
sent stays open until it is collected, in whichever test runs then (a ``ResourceWarning``,
an error under this suite's warning filter). ``tests.helpers.serving_app`` closes the bodies
itself; the
``live_server`` fixture serves through it.
"""

import gc
import socket
import struct
import sys
import time

from widget_server import STATIC_DIR


def test_connections_reset_mid_download_leave_no_file_open(live_server, monkeypatch):
    renderer = next(STATIC_DIR.glob("widget-render.*.js")).name
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)

    port = int(live_server.url.rsplit(":", 1)[1])
    for _ in range(20):
        browser = socket.create_connection(("127.0.0.1", port))
        browser.sendall(f"GET /static/{renderer} HTTP/1.1\r\nHost: shop\r\n\r\n".encode())
        assert browser.recv(12).startswith(b"HTTP/1.1 200")
        # Closed with a reset, as a browser abandoning the page does.
        browser.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        browser.close()
        time.sleep(0.02)
    time.sleep(0.2)  # the server's threads finish with the last connections
    gc.collect()

    assert [u.exc_value for u in unraisable] == []
