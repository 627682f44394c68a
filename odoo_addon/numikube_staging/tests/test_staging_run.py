# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import contextlib
import json
from unittest.mock import patch

import requests
from werkzeug.test import EnvironBuilder

import odoo
from odoo import http
from odoo.tests import HttpCase, tagged
from odoo.tests.common import TEST_CURSOR_COOKIE_NAME
from odoo.tools import config, mute_logger

from .common import LoopbackServer, StagingMixin, closed_port, without_request_database

PROD2X = {
    "token": "secret-token",
    "client": "cosmos",
    "type": "prod2x",
    "timestamp": True,
    "callback": "https://prod.example.com/web/staging/callback/42?db=prod",
    "level": "lab",
    "suffix": "david-test",
    "email": "runner@example.com",
}
DROPDB = {
    "token": "secret-token",
    "client": "cosmos",
    "type": "dropdb",
    "timestamp": True,
    "callback": "https://prod.example.com/web/staging/callback/43?db=prod",
    "database_names": "cosmos-lab_a\ncosmos-lab_b cosmos-test",
}


def rpc_result(result):
    return lambda request: {"jsonrpc": "2.0", "id": request["id"], "result": result}


def rpc_error(code, message, data=None):
    def answer(request):
        error = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        return {"jsonrpc": "2.0", "id": request["id"], "error": error}

    return answer


@tagged("post_install", "-at_install")
class TestStagingRun(StagingMixin, HttpCase):
    """The staging route over real HTTP, with a real JSON-RPC server on loopback
    standing in for the sidecar."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()

    @contextlib.contextmanager
    def sidecar(self, answer):
        with LoopbackServer(answer) as server, patch.dict(
            config.options, {"numikube_staging_sidecar": f"127.0.0.1:{server.port}"}
        ):
            yield server

    def post_run(self, payload, session=True):
        """POST the bare payload as production does; return the decoded answer."""
        cookies = {TEST_CURSOR_COOKIE_NAME: self.canonical_tag}
        if session:
            self.authenticate(None, None)
            cookies["session_id"] = self.session.sid
        self.env.flush_all()
        response = requests.post(
            self.base_url() + "/web/staging/run",
            data=json.dumps(payload),
            headers={"Content-Type": "application/json"},
            cookies=cookies,
            timeout=30,
        )
        self.assertEqual(response.status_code, 200, response.text)
        return response.json()

    def test_prod2x_forwarded_as_staging_run(self):
        result = {"db_name": "cosmos-lab_20261124_1302_david-test", "job_id": 5}
        with self.sidecar(rpc_result(result)) as sidecar:
            answer = self.post_run(PROD2X)
        self.assertEqual(answer["result"], result)
        self.assertEqual(answer["jsonrpc"], "2.0")
        [request] = sidecar.received
        self.assertEqual(request["path"], "/")
        self.assertEqual(request["json"]["jsonrpc"], "2.0")
        self.assertEqual(request["json"]["method"], "staging_run")
        self.assertEqual(request["json"]["params"], [PROD2X])
        self.assertIn("id", request["json"])

    def test_dropdb_forwarded_as_staging_run(self):
        result = {
            "status": "done",
            "dropped": ["cosmos-lab_a"],
            "missing": ["cosmos-lab_b"],
            "refused": [{"name": "cosmos-test", "reason": "not made by the sidecar"}],
        }
        with self.sidecar(rpc_result(result)) as sidecar:
            answer = self.post_run(DROPDB)
        self.assertEqual(answer["result"], result)
        self.assertEqual(sidecar.received[0]["json"]["params"], [DROPDB])

    def test_without_any_database(self):
        """A staging server with no database at all still answers."""
        result = {"db_name": "cosmos-lab_x", "job_id": 1}
        with without_request_database(), self.sidecar(rpc_result(result)):
            answer = self.post_run(PROD2X, session=False)
        self.assertEqual(answer["result"], result)

    def test_served_without_a_database(self):
        """Even where Odoo would choose a database for the request (a session,
        a single database, a dbfilter), the route gets none: a Drop Databases
        job may name that very database, and the sidecar terminates its
        connections before dropping it."""
        self.authenticate(None, None)

        def database_of(path):
            builder = EnvironBuilder(
                path=path,
                method="POST",
                headers={"Cookie": f"session_id={self.session.sid}"},
            )
            request = http.Request(http.HTTPRequest(builder.get_environ()))
            return request._get_session_and_dbname()[1]

        self.assertEqual(database_of("/web/staging/callback/1"), self.env.cr.dbname)
        with patch.object(odoo.conf, "server_wide_modules", ["base", "web", "numikube_staging"]):
            self.assertIsNone(database_of("/web/staging/run"))
        # Not server-wide: the route is only in the databases' routing maps.
        with patch.object(odoo.conf, "server_wide_modules", ["base", "web"]):
            self.assertEqual(database_of("/web/staging/run"), self.env.cr.dbname)

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_sidecar_errors_become_odoo_errors(self):
        cases = [
            (-32041, "The staging token is wrong.", "odoo.exceptions.AccessError"),
            (-32042, "The suffix 'A B' is invalid.", "odoo.exceptions.ValidationError"),
            (-32043, "You may not have more than 10 databases.", "odoo.exceptions.UserError"),
            (-32044, "No backup of cosmos.", "odoo.exceptions.UserError"),
            (-32045, "The backup storage is unreachable.", "odoo.exceptions.UserError"),
            (-32046, "That database is being made.", "odoo.exceptions.UserError"),
            (-32040, "Internal error.", "odoo.exceptions.UserError"),
            (-32602, "Invalid params", "odoo.exceptions.UserError"),
        ]
        for code, message, name in cases:
            with self.subTest(code=code), self.sidecar(
                rpc_error(code, message, f"detail of {code}")
            ):
                answer = self.post_run(PROD2X)
                error = answer["error"]
                self.assertEqual(error["data"]["name"], name)
                self.assertEqual(error["data"]["message"], message)
                self.assertIn(f"detail of {code}", error["data"]["debug"])

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_sidecar_not_running(self):
        with patch.dict(
            config.options, {"numikube_staging_sidecar": f"127.0.0.1:{closed_port()}"}
        ):
            answer = self.post_run(PROD2X)
        self.assertEqual(
            answer["error"]["data"]["message"],
            "The staging service is not running on this server.",
        )

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_sidecar_answer_not_json_rpc(self):
        with self.sidecar((502, b"<html>proxy</html>", 0)):
            answer = self.post_run(PROD2X)
        self.assertIn("not JSON-RPC", answer["error"]["data"]["message"])
        self.assertIn("<html>proxy</html>", answer["error"]["data"]["debug"])

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_production_job_through_this_route(self):
        """Both ends in one Odoo: a job run on production goes through the
        staging route to the sidecar and back, as over the wire."""
        self.environment.url = self.base_url()
        job = self.new_job(suffix="david-test")
        result = {"db_name": "cosmos-lab_20261124_1302_david-test", "job_id": 9}
        with self.sidecar(rpc_result(result)) as sidecar:
            job.with_user(self.user).run()
            self.after_commit()
        self.assertEqual(job.state, "running")
        self.assertEqual(job.database_name, result["db_name"])
        self.assertEqual(sidecar.received[0]["json"]["params"], [job._get_webhook_data()])

        with self.sidecar(rpc_error(-32043, "You may not have more than 10 databases.")):
            job.state = "error"
            job.with_user(self.user).run()
            self.after_commit()
        self.assertEqual(job.state, "error")
        self.assertEqual(job.error, "You may not have more than 10 databases.")
        self.assertIn("code -32043", job.traceback)
