# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import json

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import TransactionCase, tagged

from .common import (
    LoopbackServer,
    StagingMixin,
    closed_port,
    envelope,
    odoo_error,
)

RUN = "/web/staging/run"
STATUS = "/web/staging/status"
CANCEL = "/web/staging/cancel"


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
                "request_id": f"{self.uuid()}:{job.id}:0",
                "level": "lab",
                "suffix": "david-test",
                "email": "runner@example.com",
            },
        )

    def uuid(self):
        return self.env["ir.config_parameter"].get_param("database.uuid")

    def test_payload_backup(self):
        job = self.new_job(backup_key="cosmos_2026-11-20_03-00-00.zip")
        self.assertEqual(job._get_webhook_data()["backup"], "cosmos_2026-11-20_03-00-00.zip")
        self.assertNotIn("backup", self.new_job()._get_webhook_data())

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
            self.after_commit()
        self.assertIsNotNone(job.start_datetime)
        return job, staging

    def test_run_prod2x_running(self):
        job, staging = self.run_against(
            envelope({"db_name": "cosmos-lab_20261124_1302_david-test", "job_id": 7})
        )
        self.assertEqual(staging.received[0]["path"], "/web/staging/run")
        self.assertEqual(staging.received[0]["json"], job._get_webhook_data())
        self.assertEqual(job.state, "running")
        self.assertEqual(job.staging_job_id, "7")
        self.assertEqual(job.database_name, "cosmos-lab_20261124_1302_david-test")
        self.assertEqual(job.display_name, "cosmos-lab_20261124_1302_david-test")
        self.assertFalse(job.error)

    def test_run_dropdb_done_with_report(self):
        job = self.new_job(type_="dropdb", dropdb_database_names="a b c d")
        database = self.env["staging.database"].create(
            {"environment_id": self.environment.id, "name": "a"}
        )
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
        self.assertFalse(database.exists(), "a dropped database leaves the list")

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
        self.after_commit()
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

    # ------------------------------------ request id, after the commit

    def test_request_id_counts_runs(self):
        job, staging = self.run_against((500, b"boom", 0))
        self.assertEqual(job.run_count, 1)
        self.assertEqual(staging.received[0]["json"]["request_id"], f"{self.uuid()}:{job.id}:1")
        job, staging = self.run_against(envelope({"db_name": "x", "job_id": "j2"}), job)
        self.assertEqual(job.run_count, 2)
        self.assertRegex(
            staging.received[0]["json"]["request_id"], r"^[0-9a-f-]{36}:\d+:2$"
        )
        self.assertEqual(staging.received[0]["json"]["request_id"], f"{self.uuid()}:{job.id}:2")

    def test_staging_called_only_after_commit(self):
        job = self.new_job(suffix="david-test")
        answer = envelope({"db_name": "cosmos-lab_x_david-test", "job_id": "j1"})
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).run()
            # Committed as Running, nothing sent yet.
            self.assertEqual(job.state, "running")
            self.assertFalse(staging.received)
            self.assertFalse(job.database_name)
            self.after_commit()
            self.assertEqual(len(staging.received), 1)
        self.assertEqual(job.database_name, "cosmos-lab_x_david-test")
        self.assertEqual(job.staging_job_id, "j1")

    def test_rolled_back_run_sends_nothing(self):
        job = self.new_job()
        with LoopbackServer(envelope({"db_name": "x", "job_id": "j"})) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).run()
            # What a rollback does to the hooks (a retried transaction).
            self.env.cr.postcommit.clear()
            self.after_commit()
            self.assertFalse(staging.received)

    def test_job_changed_before_sending_is_not_sent(self):
        job = self.new_job()
        with LoopbackServer(envelope({"db_name": "x", "job_id": "j"})) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).run()
            job.write({"state": "error", "error": "Cancelled by someone"})
            self.after_commit()
            self.assertFalse(staging.received)
        self.assertEqual(job.state, "error")

    def test_answer_not_an_object(self):
        job, _staging = self.run_against(envelope(["not", "an", "object"]))
        # A list is no answer of a prod2x: no name, still running, no crash.
        self.assertEqual(job.state, "running")
        self.assertFalse(job.database_name)

    # -------------------------------------------------------- backups

    def test_backup_echoed(self):
        job = self.new_job(backup_key="cosmos-daily-2.dump")
        job, staging = self.run_against(
            envelope({"db_name": "x", "job_id": "j", "backup": "cosmos-daily-2.dump"}), job
        )
        self.assertEqual(staging.received[0]["json"]["backup"], "cosmos-daily-2.dump")
        self.assertEqual(job.state, "running")
        self.assertEqual(job.backup_used, "cosmos-daily-2.dump")

    def test_backup_not_echoed_fails_the_job(self):
        # An older staging ignores the key and restores the newest backup.
        job = self.new_job(backup_key="cosmos-daily-2.dump")
        job, _staging = self.run_against(envelope({"db_name": "cosmos-lab_x"}), job)
        self.assertEqual(job.state, "error")
        self.assertIn("did not confirm", job.error)
        self.assertIn("cosmos-daily-2.dump", job.error)
        self.assertIn("cosmos-lab_x", job.error)

    def test_backup_id_and_key(self):
        backup = self.env["staging.backup"].create(
            {"environment_id": self.environment.id, "name": "cosmos-daily-1.dump"}
        )
        job = self.new_job()
        self.assertFalse(job.backup_id)
        job.backup_id = backup
        self.assertEqual(job.backup_key, "cosmos-daily-1.dump")
        job.invalidate_recordset()
        self.assertEqual(job.backup_id, backup)
        job.backup_id = False
        self.assertFalse(job.backup_key)
        # The key outlives the list of backups.
        job.backup_key = "cosmos-daily-1.dump"
        backup.unlink()
        self.assertEqual(job.backup_key, "cosmos-daily-1.dump")
        self.assertFalse(job.backup_id)

    # ------------------------------------------------------------ status

    def running_job(self, staging_job_id="j1"):
        job = self.new_job(suffix="david-test")
        job.write(
            {
                "state": "running",
                "database_name": "cosmos-lab_x_david-test",
                "staging_job_id": staging_job_id,
            }
        )
        return job

    def status(self, **values):
        result = {
            "job_id": "j1",
            "db_name": "cosmos-lab_x_david-test",
            "state": "running",
            "phase": "restoring",
            "progress": 0.25,
            "error": None,
            "started_at": "2026-11-24T13:02:00Z",
            "finished_at": None,
        }
        result.update(values)
        return envelope(result)

    def test_refresh_status_progress(self):
        job = self.running_job()
        with LoopbackServer() as staging:
            self.environment.url = staging.url
            seen = []
            for phase, progress in [
                ("downloading", 0.1),
                ("restoring", 0.5),
                ("restoring", 0.4),  # never goes back
                ("neutralizing", 0.93),
                ("finishing", None),
            ]:
                staging.answer = {STATUS: self.status(phase=phase, progress=progress)}
                job.with_user(self.user).refresh_status()
                seen.append((job.phase, job.progress))
            self.assertEqual(
                seen,
                [
                    ("downloading", 10.0),
                    ("restoring", 50.0),
                    ("restoring", 50.0),
                    ("neutralizing", 93.0),
                    ("finishing", 93.0),
                ],
            )
            self.assertEqual(
                staging.received[0],
                {"path": STATUS, "json": {"token": "secret-token", "job_id": "j1"}},
            )
        self.assertEqual(job.state, "running")

    def test_refresh_status_done_ends_the_job(self):
        job = self.running_job()
        with LoopbackServer({STATUS: self.status(state="done", phase="done", progress=1)}) as staging:
            self.environment.url = staging.url
            job.refresh_status()
        self.assertEqual(job.state, "done")
        self.assertEqual(job.progress, 100)
        self.assertIn("is ready", job.message_ids[0].subject or "")

    def test_refresh_status_error_ends_the_job(self):
        job = self.running_job()
        answer = self.status(state="error", phase="error", error="The backup is from Odoo 17.0")
        with LoopbackServer({STATUS: answer}) as staging:
            self.environment.url = staging.url
            job.refresh_status()
        self.assertEqual(job.state, "error")
        self.assertEqual(job.error, "The backup is from Odoo 17.0")

    def test_refresh_status_older_staging(self):
        job = self.running_job()
        with LoopbackServer({}) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).refresh_status()
            self.assertTrue(job.status_unsupported)
            self.assertEqual(job.state, "running")
            # Said once: the staging is not asked again for this job.
            job.refresh_status()
            self.assertEqual(len(staging.received), 1)

    def test_refresh_status_unreachable_changes_nothing(self):
        job = self.running_job()
        self.environment.url = f"http://127.0.0.1:{closed_port()}"
        job.refresh_status()
        self.assertEqual(job.state, "running")
        self.assertFalse(job.phase)
        self.assertFalse(job.status_unsupported)

    def test_refresh_status_skips_jobs_not_running(self):
        job = self.running_job()
        job.state = "done"
        with LoopbackServer({STATUS: self.status()}) as staging:
            self.environment.url = staging.url
            job.refresh_status()
            self.assertFalse(staging.received)

    def test_refresh_status_by_another_reader(self):
        """Any Run Staging user may watch a job move, not only its owner."""
        job = self.running_job()
        other = self.create_run_staging_user("other_runner")
        with LoopbackServer({STATUS: self.status()}) as staging:
            self.environment.url = staging.url
            job.with_user(other).refresh_status()
        self.assertEqual(job.progress, 25)

    # ------------------------------------------------------------ cancel

    def test_cancel(self):
        job = self.running_job()
        answer = {CANCEL: envelope({"state": "error", "error": "Cancelled on request"})}
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).action_cancel()
            self.assertEqual(
                staging.received,
                [{"path": CANCEL, "json": {"token": "secret-token", "job_id": "j1"}}],
            )
        self.assertEqual(job.state, "error")
        self.assertEqual(job.error, "Cancelled by Stage Runner")
        # It can be run again, as a new run.
        job, staging = self.run_against(envelope({"db_name": "x", "job_id": "j2"}), job)
        self.assertEqual(job.state, "running")
        self.assertEqual(job.staging_job_id, "j2")
        self.assertFalse(job.error)

    def test_cancel_older_staging(self):
        job = self.running_job()
        with LoopbackServer({}) as staging:
            self.environment.url = staging.url
            with self.assertRaisesRegex(UserError, "older and does not offer cancelling"):
                job.with_user(self.user).action_cancel()
        self.assertEqual(job.state, "running")

    def test_cancel_refused_by_staging(self):
        job = self.running_job()
        with LoopbackServer({CANCEL: odoo_error("No job j1 on this staging.")}) as staging:
            self.environment.url = staging.url
            with self.assertRaisesRegex(UserError, "No job j1"):
                job.with_user(self.user).action_cancel()
        self.assertEqual(job.state, "running")

    def test_cancel_only_running(self):
        job = self.new_job()
        with self.assertRaisesRegex(UserError, "Only a running"):
            job.with_user(self.user).action_cancel()

    def test_cancel_someone_elses_job_is_refused(self):
        job = self.running_job()
        other = self.create_run_staging_user("other_runner")
        with LoopbackServer({CANCEL: envelope({})}) as staging:
            self.environment.url = staging.url
            with self.assertRaises(AccessError):
                job.with_user(other).action_cancel()
            self.assertFalse(staging.received)
        self.assertEqual(job.state, "running")

    # -------------------------------------------------------------- open

    def test_open_database(self):
        job = self.running_job()
        job.state = "done"
        action = job.action_open_database()
        self.assertEqual(action["type"], "ir.actions.act_url")
        self.assertEqual(action["target"], "new")
        self.assertEqual(
            action["url"],
            "https://cosmos-lab.example.com/web/login?db=cosmos-lab_x_david-test",
        )
        self.assertFalse(job.database_id)
        database = self.env["staging.database"].create(
            {"environment_id": self.environment.id, "name": "cosmos-lab_x_david-test"}
        )
        job.invalidate_recordset()
        self.assertEqual(job.database_id, database)
        self.assertEqual(database.job_id, job)
