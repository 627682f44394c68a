# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import json

import requests

from odoo.tests import HttpCase, tagged
from odoo.tests.common import TEST_CURSOR_COOKIE_NAME
from odoo.tools import mute_logger

from .common import StagingMixin, without_request_database


@tagged("post_install", "-at_install")
class TestStagingCallback(StagingMixin, HttpCase):
    """The callback route over real HTTP, as the sidecar calls it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()

    def setUp(self):
        super().setUp()
        self.job = self.new_job(suffix="david-test")
        self.job.write({"state": "running", "database_name": "cosmos-lab_x_david-test"})

    def callback(self, body, job=None, query="", session=True):
        """POST ``body`` as the sidecar does; return the decoded JSON answer.

        session=True sends the request with a session on the test database;
        False sends none, as the sidecar does on a multi-database production."""
        path = f"/web/staging/callback/{(job or self.job).id}{query}"
        headers = {"Content-Type": "application/json"}
        if session:
            self.authenticate(None, None)
            response = self.url_open(path, data=json.dumps(body), headers=headers)
        else:
            self.env.flush_all()  # url_open does it too: the server shares our cursor
            response = requests.post(
                self.base_url() + path,
                data=json.dumps(body),
                headers=headers,
                cookies={TEST_CURSOR_COOKIE_NAME: self.canonical_tag},
                timeout=30,
            )
        self.assertEqual(response.status_code, 200, response.text)
        self.job.invalidate_recordset()
        return response.json()

    def email_notifications(self):
        return self.env["mail.notification"].search(
            [
                ("mail_message_id.model", "=", "staging.job"),
                ("mail_message_id.res_id", "=", self.job.id),
                ("res_partner_id", "=", self.user.partner_id.id),
                ("notification_type", "=", "email"),
            ]
        )

    def test_done(self):
        answer = self.callback({"state": "done", "token": "secret-token"})
        self.assertIs(answer.get("result"), True, answer)
        self.assertEqual(self.job.state, "done")
        self.assertFalse(self.job.error)
        notification = self.email_notifications()
        self.assertEqual(len(notification), 1)
        message = notification.mail_message_id
        self.assertIn("cosmos-lab_x_david-test", message.subject)
        self.assertIn("https://cosmos-lab.example.com/web/database/selector", message.body)
        self.assertIn(self.user.partner_id, message.partner_ids)

    def test_mail_in_the_user_language(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env.ref("base.module_numikube_staging")._update_translations("fr_FR")
        self.user.lang = "fr_FR"
        self.callback({"state": "done", "token": "secret-token"})
        message = self.email_notifications().mail_message_id
        self.assertEqual(
            message.subject, "La base de préproduction cosmos-lab_x_david-test est prête"
        )
        self.assertIn("Ouvrir le sélecteur de bases de données de", message.body)

    def test_error_with_traceback_key(self):
        self.callback(
            {
                "state": "error",
                "token": "secret-token",
                "error": "No backup found for client cosmos.",
                "traceback": "detail from a new staging",
            }
        )
        self.assertEqual(self.job.state, "error")
        self.assertEqual(self.job.error, "No backup found for client cosmos.")
        self.assertEqual(self.job.traceback, "detail from a new staging")
        notification = self.email_notifications()
        self.assertEqual(len(notification), 1)
        self.assertIn("No backup found for client cosmos.", notification.mail_message_id.body)

    def test_error_with_stacktrace_key(self):
        # What older stagings send.
        self.callback(
            {
                "state": "error",
                "token": "secret-token",
                "error": "boom",
                "stacktrace": "detail from an old staging",
            }
        )
        self.assertEqual(self.job.state, "error")
        self.assertEqual(self.job.traceback, "detail from an old staging")

    def assert_refused(self, answer, name, text):
        error = answer.get("error")
        self.assertTrue(error, answer)
        self.assertEqual(error["data"]["name"], name)
        self.assertIn(text, error["data"]["message"])
        self.assertEqual(self.job.state, "running")
        self.assertFalse(self.email_notifications())

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_wrong_token(self):
        answer = self.callback({"state": "done", "token": "guess"})
        self.assert_refused(answer, "odoo.exceptions.AccessError", "Wrong given staging token")

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_missing_token(self):
        answer = self.callback({"state": "done"})
        self.assert_refused(answer, "odoo.exceptions.AccessError", "Wrong given staging token")

    def test_job_not_running_is_answered_success_and_not_applied(self):
        self.job.state = "done"
        answer = self.callback({"state": "error", "error": "late", "token": "secret-token"})
        self.assertIs(answer.get("result"), True, answer)
        self.assertEqual(self.job.state, "done")
        self.assertFalse(self.job.error)
        self.assertFalse(self.email_notifications())

    def test_job_id_of_the_current_run_is_applied(self):
        self.job.staging_job_id = "j2"
        answer = self.callback({"state": "done", "token": "secret-token", "job_id": "j2"})
        self.assertIs(answer.get("result"), True, answer)
        self.assertEqual(self.job.state, "done")
        self.assertEqual(len(self.email_notifications()), 1)

    def test_stale_callback_is_answered_success_and_not_applied(self):
        """A late callback of a cancelled or earlier run of the job: success, so
        that the staging does not retry it, and the current run goes on."""
        self.job.staging_job_id = "j2"
        body = {
            "state": "error",
            "error": "Cancelled",
            "traceback": "",
            "stacktrace": "",
            "token": "secret-token",
            "job_id": "j1",
        }
        answer = self.callback(body)
        self.assertIs(answer.get("result"), True, answer)
        self.assertEqual(self.job.state, "running")
        self.assertFalse(self.job.error)
        self.assertFalse(self.email_notifications())

    def test_cancelled_job_callback_is_answered_success(self):
        self.job.write(
            {"staging_job_id": "j1", "state": "error", "error": "Cancelled by Stage Runner"}
        )
        answer = self.callback(
            {"state": "error", "error": "Cancelled", "token": "secret-token", "job_id": "j1"}
        )
        self.assertIs(answer.get("result"), True, answer)
        self.assertEqual(self.job.error, "Cancelled by Stage Runner")

    def test_body_without_job_id_from_older_staging_is_applied(self):
        self.job.staging_job_id = False
        answer = self.callback({"state": "done", "token": "secret-token"})
        self.assertIs(answer.get("result"), True, answer)
        self.assertEqual(self.job.state, "done")

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_wrong_token_is_refused_even_when_stale(self):
        self.job.staging_job_id = "j2"
        answer = self.callback({"state": "done", "token": "guess", "job_id": "j1"})
        self.assert_refused(answer, "odoo.exceptions.AccessError", "Wrong given staging token")

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_unknown_job(self):
        missing = self.env["staging.job"].browse(self.job.id + 1000)
        answer = self.callback({"state": "done", "token": "secret-token"}, job=missing)
        self.assertIn("does not exist", answer["error"]["data"]["message"])

    def test_db_parameter_without_request_database(self):
        with without_request_database():
            answer = self.callback(
                {"state": "done", "token": "secret-token"},
                query=f"?db={self.env.cr.dbname}",
                session=False,
            )
        self.assertIs(answer.get("result"), True, answer)
        self.assertEqual(self.job.state, "done")
        self.assertEqual(len(self.email_notifications()), 1)

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_db_parameter_must_be_a_database_of_this_server(self):
        with without_request_database():
            for query in ("?db=no_such_database", ""):
                with self.subTest(query=query):
                    answer = self.callback(
                        {"state": "done", "token": "secret-token"},
                        query=query,
                        session=False,
                    )
                    self.assertIn("Unknown database", answer["error"]["data"]["message"])
        self.assertEqual(self.job.state, "running")

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_wrong_token_without_request_database(self):
        with without_request_database():
            answer = self.callback(
                {"state": "done", "token": "guess"},
                query=f"?db={self.env.cr.dbname}",
                session=False,
            )
        self.assert_refused(answer, "odoo.exceptions.AccessError", "Wrong given staging token")
