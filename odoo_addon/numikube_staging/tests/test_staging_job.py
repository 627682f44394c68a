# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import json

from odoo.exceptions import UserError, ValidationError
from odoo.tests import TransactionCase, tagged

from .common import LoopbackServer, StagingMixin, closed_port


def envelope(result):
    return (200, json.dumps({"jsonrpc": "2.0", "id": None, "result": result}).encode(), 0)


@tagged("post_install", "-at_install")
class TestStagingJob(StagingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()

    # ------------------------------------------------------------ fields

    def test_suffix_constraint(self):
        for suffix in ("david-test", "a_b", "x1", "a-b-c"):
            self.new_job(suffix=suffix)
        for suffix in ("David", "with space", "a--b", "-a", "a-", "é", "a.b", "a/b"):
            with self.subTest(suffix=suffix), self.assertRaisesRegex(
                ValidationError, "should not contain any spaces"
            ):
                self.new_job(suffix=suffix)

    def test_dropdb_needs_database_names(self):
        with self.assertRaises(ValidationError):
            self.new_job(type_="dropdb", dropdb_database_names=" \n ")
        self.new_job(type_="dropdb", dropdb_database_names="cosmos-lab_a")

    def test_defaults(self):
        job = self.new_job()
        self.assertEqual(job.state, "pending")
        self.assertEqual(job.type_, "prod2x")
        self.assertTrue(job.timestamp)
        self.assertEqual(job.user_id, self.user)
        self.assertEqual(job.display_name, "New Staging Job")
        job.database_name = "cosmos-lab_x"
        self.assertEqual(job.display_name, "cosmos-lab_x")

    def test_default_environment_is_the_only_active_one(self):
        Job = self.env["staging.job"]
        self.env["staging.environment"].search([]).filtered(
            lambda e: e != self.environment
        ).action_archive()
        self.assertEqual(Job.new({}).environment_id, self.environment)
        other = self.environment.copy({"name": "Test", "level": "test"})
        self.assertFalse(Job.new({}).environment_id)
        other.action_archive()
        self.assertEqual(Job.new({}).environment_id, self.environment)

    # ----------------------------------------------------------- payload

    def test_payload_prod2x(self):
        job = self.new_job(suffix="david-test")
        self.assertEqual(
            job._get_webhook_data(),
            {
                "token": "secret-token",
                "client": "cosmos",
                "type": "prod2x",
                "timestamp": True,
                "callback": "https://prod.example.com/web/staging/callback/"
                f"{job.id}?db={self.env.cr.dbname}",
                "level": "lab",
                "suffix": "david-test",
                "email": "runner@example.com",
            },
        )

    def test_payload_prod2x_without_suffix_nor_timestamp(self):
        job = self.new_job(timestamp=False)
        data = job._get_webhook_data()
        self.assertIsNone(data["suffix"])
        self.assertIs(data["timestamp"], False)

    def test_payload_dropdb(self):
        self.user.email = False
        job = self.new_job(
            type_="dropdb", dropdb_database_names="cosmos-lab_a\ncosmos-test"
        )
        data = job._get_webhook_data()
        self.assertEqual(data["type"], "dropdb")
        self.assertEqual(data["database_names"], "cosmos-lab_a\ncosmos-test")
        self.assertNotIn("suffix", data)
        self.assertNotIn("level", data)
        self.assertNotIn("email", data)

    def test_missing_base_url_is_refused_before_sending(self):
        self.env["ir.config_parameter"].sudo().set_param("web.base.url", "")
        job = self.new_job()
        with LoopbackServer(envelope({"db_name": "x"})) as staging:
            self.environment.url = staging.url
            with self.assertRaisesRegex(ValidationError, "web.base.url"):
                job.run()
            self.assertFalse(staging.received)
        self.assertEqual(job.state, "pending")

    # ------------------------------------------------- answers to Run

    def run_against(self, answer, job=None):
        job = job or self.new_job(suffix="david-test")
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).run()
        self.assertIsNotNone(job.start_datetime)
        return job, staging

    def test_run_prod2x_running(self):
        job, staging = self.run_against(
            envelope({"db_name": "cosmos-lab_20261124_1302_david-test", "job_id": 7})
        )
        self.assertEqual(staging.received[0]["path"], "/web/staging/run")
        self.assertEqual(staging.received[0]["json"], job._get_webhook_data())
        self.assertEqual(job.state, "running")
        self.assertEqual(job.database_name, "cosmos-lab_20261124_1302_david-test")
        self.assertEqual(job.display_name, "cosmos-lab_20261124_1302_david-test")
        self.assertFalse(job.error)

    def test_run_dropdb_done_with_report(self):
        job = self.new_job(type_="dropdb", dropdb_database_names="a b c d")
        job, _staging = self.run_against(
            envelope(
                {
                    "status": "done",
                    "dropped": ["a"],
                    "missing": ["b"],
                    "refused": [
                        {"name": "c", "reason": "not made by numikube-staging"},
                        {"name": "d", "reason": "protected"},
                    ],
                }
            ),
            job,
        )
        self.assertEqual(job.state, "done")
        self.assertEqual(
            job.dropdb_report,
            "Dropped: a\nNot found: b\n"
            "Refused: c (not made by numikube-staging)\nRefused: d (protected)",
        )

    def test_run_dropdb_done_old_staging(self):
        job = self.new_job(type_="dropdb", dropdb_database_names="a")
        job, _staging = self.run_against(envelope({"status": "done"}), job)
        self.assertEqual(job.state, "done")
        self.assertEqual(job.dropdb_report, "The staging server dropped the databases.")

    def test_run_odoo_error_envelope(self):
        error = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {
                "code": 200,
                "message": "Odoo Server Error",
                "data": {
                    "name": "odoo.exceptions.UserError",
                    "message": "You may not have more than 10 databases.",
                    "debug": "Traceback (most recent call last):\\n  limit",
                },
            },
        }
        job, _staging = self.run_against((200, json.dumps(error).encode(), 0))
        self.assertEqual(job.state, "error")
        self.assertEqual(job.error, "You may not have more than 10 databases.")
        self.assertEqual(job.traceback, "Traceback (most recent call last):\n  limit")
        self.assertFalse(job.database_name)

    def test_run_http_error(self):
        job, _staging = self.run_against((502, b"Bad Gateway from the proxy", 0))
        self.assertEqual(job.state, "error")
        self.assertEqual(job.error, "The staging server answered with HTTP error 502 Bad Gateway.")
        self.assertEqual(job.traceback, "Bad Gateway from the proxy")

    def test_run_invalid_json(self):
        job, _staging = self.run_against((200, b"<html>login</html>", 0))
        self.assertEqual(job.state, "error")
        self.assertIn("not a JSON-RPC response", job.error)
        self.assertEqual(job.traceback, "<html>login</html>")

    def test_run_timeout(self):
        # Odoo's test harness raises any timeout under 10 s to 10 s.
        self.env["ir.config_parameter"].sudo().set_param("numikube_staging.timeout", "10")
        job, _staging = self.run_against(envelope({"db_name": "late"})[:2] + (11,))
        self.assertEqual(job.state, "error")
        self.assertIn("did not answer in time", job.error)
        self.assertFalse(job.database_name)

    def test_run_unreachable(self):
        job = self.new_job()
        self.environment.url = f"http://127.0.0.1:{closed_port()}"
        job.with_user(self.user).run()
        self.assertEqual(job.state, "error")
        self.assertIn("could not be reached", job.error)
        self.assertTrue(job.traceback)

    def test_error_job_can_run_again(self):
        job, _staging = self.run_against((500, b"boom", 0))
        self.assertEqual(job.state, "error")
        job, _staging = self.run_against(envelope({"db_name": "cosmos-lab_x"}), job)
        self.assertEqual(job.state, "running")
        self.assertFalse(job.error)
        self.assertFalse(job.traceback)

    def test_running_job_cannot_run(self):
        job, _staging = self.run_against(envelope({"db_name": "cosmos-lab_x"}))
        with self.assertRaises(UserError):
            job.run()
