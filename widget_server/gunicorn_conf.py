"""gunicorn settings for production, shipped in the package so that ``pip install .`` is enough::

    gunicorn -c python:widget_server.gunicorn_conf 'widget_server:create_app()'

Options on the command line win over these (``-w 8``, ``-b 127.0.0.1:8000``).

The worker class is chosen for slow clients. A sync worker serves one connection at a time and
waits for as long as its client takes to send the request: two connections sending a byte a
second held both workers of a two-worker server and ``/healthz`` answered after 36 s. A thread
per connection (``gthread``) only moves that limit to the number of threads. A gevent worker
waits for every connection in a greenlet of its own, so a slow client costs a socket, not a
worker, and a client that has not sent its request head within ``keepalive`` seconds is
disconnected. gevent patches the standard library in each worker before the app is imported
there; psycopg and SQLAlchemy then wait for the database cooperatively.

What this does not absorb: more open connections than ``workers * worker_connections``, or
request bodies sent slowly (each holds one of the worker's connections, not the worker, until
it is complete). A buffering reverse proxy in front (nginx) takes those; see the README.

The web workers serve requests and start no background work: run ``funnelcake worker`` beside
them (it applies the stored events, runs the promotion rounds and delivers the webhooks).
"""

import os

bind = "0.0.0.0:8000"
worker_class = "gevent"
#: One worker per core: a gevent worker serves many requests at once, but only one runs Python
#: at a time, so more workers than cores add memory and database connections, not speed.
workers = max(2, os.cpu_count() or 1)
#: Open connections per worker, idle or slow ones included.
worker_connections = 1000
#: Seconds a client has to send each request head (the first one included) before it is
#: disconnected, and the longest a kept-alive connection stays idle. Never 0: that would drop
#: the limit on slow request heads.
keepalive = 5
#: A worker that has not reported for this many seconds (its event loop blocked by one request)
#: is killed and replaced.
timeout = 30
graceful_timeout = 30
#: Create the app in each worker after gevent has patched it; preloading would import the
#: database drivers unpatched in the master.
preload_app = False
