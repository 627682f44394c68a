# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""Test helpers: a real HTTP server on loopback, standing in for a staging Odoo
or for the sidecar, and a way to send requests that carry no database."""

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch

import odoo
from odoo import http


NOT_FOUND = (404, b"<html>404: Not Found</html>", 0)


def envelope(result):
    """Odoo's JSON-RPC answer of a staging route returning ``result``."""
    return (200, json.dumps({"jsonrpc": "2.0", "id": None, "result": result}).encode(), 0)


def odoo_error(message, debug=""):
    """Odoo's error envelope, as a staging route refuses."""
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": 200,
            "message": "Odoo Server Error",
            "data": {
                "name": "odoo.exceptions.UserError",
                "message": message,
                "debug": debug,
            },
        },
    }
    return (200, json.dumps(body).encode(), 0)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 that answers every POST with ``self.answer``
    (status, body, delay in seconds) and keeps the JSON bodies it received.

    ``answer`` may also be a function of the received JSON returning a dict,
    sent as JSON with status 200; or a dict of such answers by path, any
    other path being answered 404 as by an older staging."""

    def __init__(self, answer=(200, b"{}", 0)):
        self.answer = answer
        self.received = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (name fixed by http.server)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                server.received.append({"path": self.path, "json": body})
                answer = server.answer
                if isinstance(answer, dict):
                    answer = answer.get(self.path.split("?")[0], NOT_FOUND)
                if callable(answer):
                    answer = (200, json.dumps(answer(body)).encode(), 0)
                status, content, delay = answer
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except OSError:
                    # The client gave up (timeout test): nothing to answer.
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def closed_port():
    """A loopback port on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def without_request_database():
    """Requests made in this block are served as on a server with several
    databases (or none): Odoo picks no database for them, and only the routes
    of server-wide modules answer, as on a real staging or multi-database
    production where numikube_staging is in ``server_wide_modules``."""
    modules = list(odoo.conf.server_wide_modules or [])
    if "numikube_staging" not in modules:
        modules.append("numikube_staging")
    # nodb_routing_map is computed once per process from server_wide_modules.
    http.root.__dict__.pop("nodb_routing_map", None)
    try:
        with patch.object(odoo.conf, "server_wide_modules", modules), patch.object(
            http, "db_list", lambda force=False, host=None: []
        ):
            yield
    finally:
        http.root.__dict__.pop("nodb_routing_map", None)


class StagingMixin:
    """Data shared by the tests: an environment and a user of Run Staging."""

    @classmethod
    def setup_staging(cls):
        cls.env["ir.config_parameter"].sudo().set_param(
            "web.base.url", "https://prod.example.com"
        )
        cls.environment = cls.env["staging.environment"].create(
            {
                "name": "Lab",
                "url": "https://cosmos-lab.example.com",
                "client": "cosmos",
                "level": "lab",
                "token": "secret-token",
            }
        )
        cls.group_run_staging = cls.env.ref("numikube_staging.group_run_staging")
        cls.user = cls.env["res.users"].create(
            {
                "name": "Stage Runner",
                "login": "stage_runner",
                "email": "runner@example.com",
                "groups_id": [odoo.Command.set(cls.group_run_staging.ids)],
            }
        )

    def after_commit(self):
        """What Odoo does once a request's transaction is committed: run the
        post-commit hooks (Run calls the staging there, through a cursor of its
        own, which the test registry serves on the test's transaction)."""
        self.env.flush_all()
        registry = self.env.registry
        entered = registry.test_cr is None
        if entered:
            registry.enter_test_mode(self.env.cr)
        try:
            self.env.cr.postcommit.run()
        finally:
            if entered:
                registry.leave_test_mode()
        self.env.invalidate_all()

    def create_run_staging_user(self, login):
        return self.env["res.users"].create(
            {
                "name": login.replace("_", " ").title(),
                "login": login,
                "email": f"{login}@example.com",
                "groups_id": [odoo.Command.set(self.group_run_staging.ids)],
            }
        )

    @classmethod
    def new_job(cls, **values):
        """A job created by the Run Staging user, returned as superuser."""
        return (
            cls.env["staging.job"]
            .with_user(cls.user)
            .create({"environment_id": cls.environment.id, **values})
            .sudo()
        )
