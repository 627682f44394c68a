# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from datetime import datetime

from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged

from .common import LoopbackServer, StagingMixin, envelope, odoo_error

RUN = "/web/staging/run"
EXTEND = "/web/staging/extend"


@tagged("post_install", "-at_install")
class TestStagingDatabase(StagingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()
        cls.database = cls.env["staging.database"].create(
            {
                "environment_id": cls.environment.id,
                "name": "cosmos-lab_20261124_1302_david-test",
                "size_bytes": 963 * 1024 * 1024,
                "made_by_staging": True,
                "expires_at": datetime(2026, 12, 8, 13, 2),
            }
        )

    def test_size(self):
        self.assertEqual(self.database.size, "963 MB")
        self.database.size_bytes = 5 * 1024**3 + 1024**3 // 2
        self.assertEqual(self.database.size, "5.5 GB")
        self.database.size_bytes = 0
        self.assertEqual(self.database.size, "")

    def test_open(self):
        action = self.database.with_user(self.user).action_open()
        self.assertEqual(
            action,
            {
                "type": "ir.actions.act_url",
                "url": "https://cosmos-lab.example.com/web/login"
                "?db=cosmos-lab_20261124_1302_david-test",
                "target": "new",
            },
        )

    def test_drop_makes_and_runs_a_drop_job(self):
        name = self.database.name
        answer = {
            RUN: envelope(
                {
                    "status": "done",
                    "dropped": [self.database.name],
                    "missing": [],
                    "refused": [],
                }
            )
        }
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            action = self.database.with_user(self.user).action_drop()
            self.after_commit()
            [request] = staging.received
        job = self.env["staging.job"].browse(action["res_id"])
        self.assertEqual(action["res_model"], "staging.job")
        self.assertEqual(job.type_, "dropdb")
        self.assertEqual(job.dropdb_database_names, name)
        self.assertEqual(job.user_id, self.user)
        self.assertEqual(job.state, "done")
        self.assertEqual(request["json"]["type"], "dropdb")
        self.assertEqual(request["json"]["database_names"], name)
        self.assertIn(job, self.env["staging.job"].search([]))
        self.assertFalse(self.database.exists())

    def test_extend(self):
        answer = {EXTEND: envelope({"expires_at": "2026-12-15T10:30:00.123456789+01:00"})}
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            self.database.with_user(self.user).action_extend()
            self.assertEqual(
                staging.received,
                [
                    {
                        "path": EXTEND,
                        "json": {
                            "token": "secret-token",
                            "db_name": "cosmos-lab_20261124_1302_david-test",
                        },
                    }
                ],
            )
        self.assertEqual(self.database.expires_at, datetime(2026, 12, 15, 9, 30, 0, 123456))

    def test_extend_refused(self):
        answer = {EXTEND: odoo_error("Copies do not expire on this staging.")}
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            with self.assertRaisesRegex(UserError, "Copies do not expire"):
                self.database.action_extend()
        self.assertEqual(self.database.expires_at, datetime(2026, 12, 8, 13, 2))

    def test_extend_older_staging(self):
        with LoopbackServer({}) as staging:
            self.environment.url = staging.url
            with self.assertRaisesRegex(UserError, "older and does not offer keeping"):
                self.database.action_extend()

    def test_job_link(self):
        job = self.new_job(suffix="david-test")
        job.write({"database_name": self.database.name, "state": "done"})
        self.assertEqual(self.database.job_id, job)
        self.database.staging_job_id = "j9"
        job.staging_job_id = "j9"
        self.database.invalidate_recordset()
        self.assertEqual(self.database.job_id, job)
