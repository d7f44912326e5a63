"""Webhooks call public addresses only: refused when saved (a literal private address or
localhost) and when sent (every resolved address checked, the connection pinned to it), no
redirects followed; ``WEBHOOK_ALLOWED_HOSTS`` lets an operator allow a receiver anyway."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select

from widget_server import outbound
from widget_server.extensions import db
from widget_server.models import WebhookDelivery
from widget_server.models.types import utcnow
from widget_server.services.platform import webhooks

PRIVATE_URLS = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8000/hook",
    "http://10.0.0.7/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.20/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:5000/hook",
    "http://224.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::7]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "https://localhost/hook",
    "http://LOCALHOST:8000/hook",
    "http://shop.localhost/hook",
]


class _Receiver(BaseHTTPRequestHandler):
    """Records every request; answers ``status`` (with a Location for a 3xx)."""

    received: list = []
    status = 204

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.command, self.path, dict(self.headers), body))
        self.send_response(type(self).status)
        if 300 <= type(self).status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST  # noqa: N815 (a followed redirect would arrive as a GET)

    def log_message(self, *args):
        pass


class _V6Server(HTTPServer):
    address_family = socket.AF_INET6


@pytest.fixture
def receiver():
    """An HTTP receiver on 127.0.0.1 and one on [::1], sharing one request log."""
    _Receiver.received = []
    _Receiver.status = 204
    servers = [HTTPServer(("127.0.0.1", 0), _Receiver), _V6Server(("::1", 0), _Receiver)]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()

    class Receiver:
        port = servers[0].server_port
        v6_port = servers[1].server_port
        received = _Receiver.received

        @staticmethod
        def answer(status: int) -> None:
            _Receiver.status = status

    yield Receiver
    for server, thread in zip(servers, threads, strict=True):
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _queue(site_id: int, url: str) -> None:
    """A pending delivery to ``url`` as if saved before (send time must check it on its own)."""
    webhooks.enqueue(site_id, [url], "stage.changed", [({"to_stage": "customer"}, utcnow())])
    db.session.commit()


def _the_delivery() -> WebhookDelivery:
    db.session.expire_all()
    return db.session.scalars(select(WebhookDelivery)).one()


# -- at send time -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",
        "http://[::1]:{v6_port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://10.0.0.7:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
def test_webhook_to_a_non_public_address_is_refused_at_send_time(
    app, make_site, runner, receiver, url
):
    site = make_site()
    _queue(site["id"], url.format(port=receiver.port, v6_port=receiver.v6_port))

    result = runner.invoke(args=["deliver-webhooks"])

    assert "delivered 0" in result.output, result.output
    assert receiver.received == []
    delivery = _the_delivery()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert delivery.last_error.startswith("refused: ")
    assert "not a public address" in delivery.last_error


@pytest.mark.parametrize(
    ("allowed", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:{port}/hook"),
        ("127.0.0.0/8, ::1", "http://localhost:{port}/hook"),
        ("localhost", "http://localhost:{port}/hook"),
        ("::1", "http://[::1]:{v6_port}/hook"),
    ],
)
def test_allowed_hosts_setting_lets_a_local_webhook_through(
    app, make_site, runner, receiver, allowed, url
):
    app.config["WEBHOOK_ALLOWED_HOSTS"] = allowed
    site = make_site()
    _queue(site["id"], url.format(port=receiver.port, v6_port=receiver.v6_port))

    assert "delivered 1" in runner.invoke(args=["deliver-webhooks"]).output

    [(method, path, headers, _)] = receiver.received
    assert (method, path) == ("POST", "/hook")
    assert headers["Host"] == url.format(port=receiver.port, v6_port=receiver.v6_port).split("/")[2]
    assert _the_delivery().status == "delivered"


def test_allowing_one_network_does_not_allow_another(app, make_site, runner, receiver):
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "10.0.0.0/8, hooks.internal"
    site = make_site()
    _queue(site["id"], f"http://127.0.0.1:{receiver.port}/hook")

    runner.invoke(args=["deliver-webhooks"])

    assert receiver.received == []
    assert _the_delivery().last_error.startswith("refused: ")


def test_redirect_is_not_followed(app, make_site, runner, receiver):
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
    receiver.answer(302)
    site = make_site()
    _queue(site["id"], f"http://127.0.0.1:{receiver.port}/hook")

    assert "retrying 1" in runner.invoke(args=["deliver-webhooks"]).output

    assert [(method, path) for method, path, _, _ in receiver.received] == [("POST", "/hook")]
    delivery = _the_delivery()
    assert (delivery.status, delivery.last_error) == (
        "pending",
        "HTTP 302 (redirects are not followed)",
    )


def test_a_name_answering_any_private_address_is_refused(monkeypatch):
    # A name with a public and a private answer must not leave the choice to the connection.
    answers = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answers)
    with pytest.raises(outbound.RefusedTarget, match="10.1.2.3"):
        outbound.resolve_target("https://hooks.shop.example/h", outbound.allowance_of({}))


def test_connection_goes_to_the_checked_address_with_the_urls_host(receiver):
    # The name is not looked up again when connecting (.invalid never resolves), so a name
    # that changes its answer after the check (DNS rebinding) reaches nothing new.
    target = outbound.Target("http", "hooks.shop.invalid", receiver.port, "/hook?x=1", "127.0.0.1")
    connection = outbound.pinned_connection(target, timeout_s=5)
    try:
        connection.request("POST", target.path, body=b"{}")
        assert connection.getresponse().status == 204
    finally:
        connection.close()
    [(_, path, headers, _)] = receiver.received
    assert (path, headers["Host"]) == ("/hook?x=1", f"hooks.shop.invalid:{receiver.port}")


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_non_public_hosts_are_refused_when_resolved(url):
    with pytest.raises(outbound.RefusedTarget):
        outbound.resolve_target(url, outbound.allowance_of({}))


# -- at save time -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_site_stage_webhook_to_a_private_address_is_refused_naming_the_field(admin, url):
    response = admin.post(
        "/api/v1/admin/sites",
        json={"name": "Shop", "settings": {"stage_webhook_url": url}},
    )
    assert response.status_code == 400, response.json
    messages = response.json["error"]["fields"]["settings.stage_webhook_url"]
    assert any("public addresses only" in message for message in messages), messages


def test_campaign_webhook_to_a_private_address_is_refused_naming_the_field(admin, make_site):
    site = make_site()
    response = admin.post(
        f"/api/v1/admin/sites/{site['id']}/campaigns",
        json={
            "name": "C",
            "kind": "survey",
            "ab": {"webhook_url": "http://169.254.169.254/latest/meta-data/"},
        },
    )
    assert response.status_code == 400, response.json
    assert "ab.webhook_url" in response.json["error"]["fields"]


def test_public_and_allowed_webhook_urls_are_accepted(app, admin, make_site):
    site = make_site(stage_webhook_url="https://hooks.shop.example/stage")
    assert site["settings"]["stage_webhook_url"] == "https://hooks.shop.example/stage"
    app.config["WEBHOOK_ALLOWED_HOSTS"] = "10.1.0.0/16"
    response = admin.patch(
        f"/api/v1/admin/sites/{site['id']}",
        json={"settings": {"stage_webhook_url": "http://10.1.2.3:8080/stage"}},
    )
    assert response.status_code == 200, response.json
    refused = admin.patch(
        f"/api/v1/admin/sites/{site['id']}",
        json={"settings": {"stage_webhook_url": "http://10.2.0.1:8080/stage"}},
    )
    assert refused.status_code == 400
