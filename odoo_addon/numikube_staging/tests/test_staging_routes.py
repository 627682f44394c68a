# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import contextlib
import json
from unittest.mock import patch

import requests

from odoo.tests import HttpCase, tagged
from odoo.tests.common import TEST_CURSOR_COOKIE_NAME
from odoo.tools import config, mute_logger

from .common import LoopbackServer, StagingMixin, closed_port, without_request_database
from .test_staging_run import rpc_error, rpc_result

# route, body, sidecar method, its params
ROUTES = [
    (
        "/web/staging/list",
        {"token": "secret-token", "client": "cosmos"},
        "staging_list",
        ["secret-token", "cosmos"],
    ),
    (
        "/web/staging/status",
        {"token": "secret-token", "job_id": "j1"},
        "staging_status",
        ["secret-token", "j1"],
    ),
    (
        "/web/staging/backups",
        {"token": "secret-token", "client": "cosmos"},
        "staging_backups",
        ["secret-token", "cosmos"],
    ),
    (
        "/web/staging/cancel",
        {"token": "secret-token", "job_id": "j1"},
        "staging_cancel",
        ["secret-token", "j1"],
    ),
    (
        "/web/staging/extend",
        {"token": "secret-token", "db_name": "cosmos-lab_x"},
        "staging_extend",
        ["secret-token", "cosmos-lab_x"],
    ),
]


@tagged("post_install", "-at_install")
class TestStagingRoutes(StagingMixin, HttpCase):
    """The staging routes of docs/contract.md "More staging routes" over real HTTP,
    with a real JSON-RPC server on loopback standing in for the sidecar."""

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

    def post(self, path, body, session=True):
        cookies = {TEST_CURSOR_COOKIE_NAME: self.canonical_tag}
        if session:
            self.authenticate(None, None)
            cookies["session_id"] = self.session.sid
        self.env.flush_all()
        response = requests.post(
            self.base_url() + path,
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
            cookies=cookies,
            timeout=30,
        )
        self.assertEqual(response.status_code, 200, response.text)
        return response.json()

    def test_each_route_forwards_to_its_method(self):
        for path, body, method, params in ROUTES:
            result = {"answer_of": method}
            with self.subTest(path=path), self.sidecar(rpc_result(result)) as sidecar:
                answer = self.post(path, body)
                self.assertEqual(answer["result"], result)
                [request] = sidecar.received
                self.assertEqual(request["json"]["jsonrpc"], "2.0")
                self.assertEqual(request["json"]["method"], method)
                self.assertEqual(request["json"]["params"], params)

    def test_without_any_database(self):
        with without_request_database():
            for path, body, method, _params in ROUTES:
                with self.subTest(path=path), self.sidecar(rpc_result({"m": method})):
                    answer = self.post(path, body, session=False)
                    self.assertEqual(answer["result"], {"m": method})

    def test_missing_keys_are_sent_as_null(self):
        with self.sidecar(rpc_result([])) as sidecar:
            self.post("/web/staging/list", {})
        self.assertEqual(sidecar.received[0]["json"]["params"], [None, None])

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_sidecar_errors_become_odoo_errors(self):
        cases = [
            (-32041, "The staging token is wrong.", "odoo.exceptions.AccessError"),
            (-32042, "Copies do not expire here.", "odoo.exceptions.ValidationError"),
            (-32044, "No job j1.", "odoo.exceptions.UserError"),
        ]
        for path, body, _method, _params in ROUTES:
            for code, message, name in cases:
                with self.subTest(path=path, code=code), self.sidecar(
                    rpc_error(code, message, f"detail of {code}")
                ):
                    error = self.post(path, body)["error"]
                    self.assertEqual(error["data"]["name"], name)
                    self.assertEqual(error["data"]["message"], message)
                    self.assertIn(f"detail of {code}", error["data"]["debug"])

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_sidecar_not_running(self):
        with patch.dict(
            config.options, {"numikube_staging_sidecar": f"127.0.0.1:{closed_port()}"}
        ):
            answer = self.post("/web/staging/status", {"token": "t", "job_id": "j"})
        self.assertEqual(
            answer["error"]["data"]["message"],
            "The staging service is not running on this server.",
        )

    def test_production_methods_through_these_routes(self):
        """Both ends in one Odoo: production's list, status, backups, cancel
        and extend go through the staging routes to the sidecar and back."""
        self.environment.url = self.base_url()
        copy = {"name": "cosmos-lab_x", "size_bytes": 10, "made_by_staging": True}

        def sidecar(request):
            method, params = request["method"], request["params"]
            results = {
                "staging_list": [copy],
                "staging_backups": {"backups": [{"key": "cosmos-daily-1.dump"}]},
                "staging_status": {
                    "job_id": params[1],
                    "state": "running",
                    "phase": "restoring",
                    "progress": 0.5,
                },
                "staging_cancel": {"state": "error", "error": "Cancelled"},
                "staging_extend": {"expires_at": "2026-12-15T10:00:00Z"},
            }
            return {"jsonrpc": "2.0", "id": request["id"], "result": results[method]}

        with self.sidecar(sidecar) as server:
            self.environment.action_refresh_databases()
            self.environment._refresh_backups()
            [database] = self.environment.database_ids
            database.action_extend()
            job = self.new_job()
            job.write({"state": "running", "staging_job_id": "j1", "database_name": "x"})
            job.refresh_status()
            self.assertEqual((job.phase, job.progress), ("restoring", 50))
            job.with_user(self.user).action_cancel()
        self.assertEqual(database.name, "cosmos-lab_x")
        self.assertEqual(str(database.expires_at), "2026-12-15 10:00:00")
        self.assertEqual(self.environment.backup_ids.mapped("name"), ["cosmos-daily-1.dump"])
        self.assertEqual(job.state, "error")
        self.assertEqual(
            [r["json"]["method"] for r in server.received],
            [
                "staging_backups",
                "staging_list",
                "staging_backups",
                "staging_extend",
                "staging_status",
                "staging_cancel",
            ],
        )

    def test_client_tokens_are_forwarded_not_checked(self):
        """With per-client tokens (numikube_staging_client_tokens), a client's
        token is not numikube_staging_token: the route forwards whatever it
        got, and the sidecar decides."""
        staging_wide = {"numikube_staging_token": "the-staging-token"}
        with patch.dict(config.options, staging_wide):
            for path, body, method, params in ROUTES:
                body = {**body, "token": "cosmos-own-token"}
                with self.subTest(path=path), self.sidecar(rpc_result({"m": method})) as sidecar:
                    answer = self.post(path, body)
                    self.assertEqual(answer["result"], {"m": method})
                    self.assertEqual(
                        sidecar.received[0]["json"]["params"],
                        ["cosmos-own-token", *params[1:]],
                    )
            payload = {"token": "cosmos-own-token", "client": "cosmos", "type": "prod2x"}
            with self.sidecar(rpc_result({"db_name": "cosmos-lab"})) as sidecar:
                answer = self.post("/web/staging/run", payload)
            self.assertEqual(answer["result"], {"db_name": "cosmos-lab"})
            self.assertEqual(sidecar.received[0]["json"]["params"], [payload])
