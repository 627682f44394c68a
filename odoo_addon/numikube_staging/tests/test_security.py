# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""What the staging and the callback own is written only by them and by
administrators, whatever a user sends through RPC; the callback route checks
the token before it says anything about the job."""

import json

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, TransactionCase, tagged
from odoo.tools import mute_logger

from .common import LoopbackServer, StagingMixin, envelope

RUN = "/web/staging/run"
CANCEL = "/web/staging/cancel"


@tagged("post_install", "-at_install")
class TestSystemFields(StagingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()
        cls.settings_admin = cls.env["res.users"].create(
            {
                "name": "Settings Admin",
                "login": "settings_admin",
                "groups_id": [Command.set(cls.env.ref("base.group_system").ids)],
            }
        )

    def test_user_cannot_write_what_the_staging_owns(self):
        job = self.new_job(suffix="mine")
        forged = {
            "state": "running",
            "staging_job_id": "someone-elses-job",
            "error": "x",
            "traceback": "x",
            "phase": "restoring",
            "progress": 50,
            "database_name": "cosmos-lab_x",
            "dropdb_report": "x",
            "run_count": 7,
            "status_unsupported": True,
            "backup_used": "x",
            "filestore": "zip",
            "missing_attachments": 1,
            "anonymize_report": "x",
            "start_datetime": "2026-11-24 13:02:00",
        }
        for name, value in forged.items():
            with self.subTest(field=name), self.assertRaisesRegex(
                AccessError, "Only the staging server and administrators change"
            ):
                job.with_user(self.user).write({name: value})
        self.assertEqual(job.state, "pending")
        self.assertFalse(job.staging_job_id)
        # What the user owns is still theirs.
        job.with_user(self.user).write({"suffix": "mine2"})
        self.assertEqual(job.suffix, "mine2")

    def test_the_refusal_names_the_fields(self):
        job = self.new_job()
        with self.assertRaises(AccessError) as caught:
            job.with_user(self.user).write({"state": "done", "staging_job_id": "j9"})
        message = str(caught.exception)
        self.assertIn("Status", message)
        self.assertIn("Staging Job ID", message)
        self.assertIn("use the Run and Cancel buttons", message)

    def test_user_cannot_create_a_job_with_them(self):
        Job = self.env["staging.job"].with_user(self.user)
        for values in ({"state": "done"}, {"staging_job_id": "j1"}, {"run_count": 3}):
            with self.subTest(values=values), self.assertRaises(AccessError):
                Job.create({"environment_id": self.environment.id, **values})

    def test_forged_staging_job_id_cannot_cancel_another_job(self):
        """The attack: a running job of one's own, with the staging job id of
        someone else's, then Cancel."""
        job = self.new_job()
        job.write({"state": "running", "staging_job_id": "mine"})
        with LoopbackServer({CANCEL: envelope({})}) as staging:
            self.environment.url = staging.url
            with self.assertRaises(AccessError):
                job.with_user(self.user).write({"staging_job_id": "someone-elses"})
            job.with_user(self.user).action_cancel()
            self.assertEqual(
                [r["json"]["job_id"] for r in staging.received], ["mine"]
            )
        self.assertEqual(job.state, "error")

    def test_administrators_write_them(self):
        job = self.new_job().with_user(self.settings_admin)
        job.write({"state": "running", "staging_job_id": "j1", "progress": 40})
        self.assertEqual((job.state, job.staging_job_id, job.progress), ("running", "j1", 40))
        job.write({"state": "error", "error": "Set by hand"})
        self.assertEqual(job.error, "Set by hand")
        created = self.env["staging.job"].with_user(self.settings_admin).create(
            {"environment_id": self.environment.id, "state": "done"}
        )
        self.assertEqual(created.state, "done")

    def test_user_still_runs_and_cancels_own_job(self):
        job = self.new_job(suffix="david-test")
        answer = {
            RUN: envelope({"db_name": "cosmos-lab_x_david-test", "job_id": "j1"}),
            CANCEL: envelope({"state": "error", "error": "Cancelled"}),
        }
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).run()
            self.after_commit()
            self.assertEqual((job.state, job.staging_job_id), ("running", "j1"))
            job.with_user(self.user).action_cancel()
        self.assertEqual(job.state, "error")
        self.assertEqual(job.error, "Cancelled by Stage Runner")

    def test_anonymize_is_the_environments_to_lift(self):
        self.environment.anonymize = True
        job = self.new_job()
        self.assertTrue(job.anonymize)
        with self.assertRaisesRegex(AccessError, "the environment decides"):
            job.with_user(self.user).write({"anonymize": False})
        self.assertTrue(job.anonymize)
        job.with_user(self.settings_admin).write({"anonymize": False})
        self.assertFalse(job.anonymize)

    def test_anonymize_may_be_asked_before_the_run_only(self):
        job = self.new_job()
        self.assertFalse(job.anonymize)
        job.with_user(self.user).write({"anonymize": True})
        self.assertTrue(job.anonymize)
        job.write({"state": "running"})
        with self.assertRaisesRegex(AccessError, "the environment decides"):
            job.with_user(self.user).write({"anonymize": False})


@tagged("post_install", "-at_install")
class TestCallbackTokenFirst(StagingMixin, HttpCase):
    """A wrong token gets one refusal, whether the job exists or not."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()
        cls.other_environment = cls.env["staging.environment"].create(
            {
                "name": "Other",
                "url": "https://flex-lab.example.com",
                "client": "flex",
                "token": "other-token",
            }
        )

    def setUp(self):
        super().setUp()
        self.job = self.new_job(suffix="david-test")
        self.job.write({"state": "running", "database_name": "cosmos-lab_x"})
        self.missing_id = self.job.id + 1000

    def callback(self, job_id, body):
        self.authenticate(None, None)
        response = self.url_open(
            f"/web/staging/callback/{job_id}",
            data=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.job.invalidate_recordset()
        error = response.json().get("error")
        return {key: error["data"][key] for key in ("name", "message")} if error else None

    @mute_logger("odoo.http")  # the refusals are logged as warnings
    def test_wrong_token_same_answer_for_existing_and_unknown_job(self):
        for body in (
            {"state": "done", "token": "guess"},
            {"state": "done"},
            {"state": "done", "token": ""},
            {"state": "done", "token": 42},
        ):
            with self.subTest(body=body):
                existing = self.callback(self.job.id, body)
                unknown = self.callback(self.missing_id, body)
                self.assertEqual(
                    existing,
                    {"name": "odoo.exceptions.AccessError", "message": "Wrong given staging token"},
                )
                self.assertEqual(existing, unknown)
        self.assertEqual(self.job.state, "running")

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_unknown_job_is_said_only_with_a_right_token(self):
        answer = self.callback(self.missing_id, {"state": "done", "token": "secret-token"})
        self.assertEqual(answer["name"], "odoo.exceptions.UserError")
        self.assertIn("does not exist", answer["message"])

    @mute_logger("odoo.http")  # the refusal is logged as a warning
    def test_another_environments_token_is_refused(self):
        answer = self.callback(self.job.id, {"state": "done", "token": "other-token"})
        self.assertEqual(answer["message"], "Wrong given staging token")
        self.assertEqual(self.job.state, "running")

    def test_right_token_applies(self):
        self.assertIsNone(self.callback(self.job.id, {"state": "done", "token": "secret-token"}))
        self.assertEqual(self.job.state, "done")
