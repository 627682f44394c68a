# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""Anonymized copies (asked by the environment, confirmed by the staging, its
report kept) and where a copy's files came from (docs/contract.md "Anonymized
copies", "Filestore")."""

from odoo.tests import TransactionCase, tagged

from .common import LoopbackServer, StagingMixin, envelope

RUN = "/web/staging/run"
STATUS = "/web/staging/status"
CANCEL = "/web/staging/cancel"

def done_mail_body(job, subject="is ready"):
    """The body of the job's *done* mail."""
    message = job.message_ids.filtered(lambda m: subject in (m.subject or ""))
    return str(message.ensure_one().body)


NOT_CONFIRMED = (
    "The staging server did not confirm that it anonymizes copies (it may be an "
    "older version): the copy was not used. Upgrade numikube-staging on the "
    "staging server."
)


@tagged("post_install", "-at_install")
class TestAnonymize(StagingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()

    def run_against(self, answer, job):
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).run()
            self.after_commit()
        return staging

    def test_environment_field(self):
        field = self.env["staging.environment"]._fields["anonymize"]
        self.assertEqual(field.type, "boolean")
        self.assertEqual(
            field.help,
            "Mask the people (customers, contacts, portal users, employees) in "
            "every copy made for this environment.",
        )
        self.assertFalse(self.environment.anonymize)

    def test_copied_to_each_job(self):
        self.assertFalse(self.new_job().anonymize)
        self.environment.anonymize = True
        job = self.new_job()
        self.assertTrue(job.anonymize)
        # Turning it off later does not change what a job asked.
        self.environment.anonymize = False
        self.assertTrue(job.anonymize)
        self.assertFalse(self.new_job().anonymize)

    def test_payload(self):
        self.assertNotIn("anonymize", self.new_job()._get_webhook_data())
        self.environment.anonymize = True
        self.assertIs(self.new_job()._get_webhook_data()["anonymize"], True)
        dropdb = self.new_job(type_="dropdb", dropdb_database_names="a")
        self.assertNotIn("anonymize", dropdb._get_webhook_data())

    def test_confirmed(self):
        self.environment.anonymize = True
        job = self.new_job()
        answer = {RUN: envelope({"db_name": "cosmos-lab_x", "job_id": "j1", "anonymize": True})}
        staging = self.run_against(answer, job)
        self.assertIs(staging.received[0]["json"]["anonymize"], True)
        self.assertEqual(job.state, "running")
        self.assertEqual(job.staging_job_id, "j1")

    def test_not_confirmed_fails_the_job(self):
        """An older staging ignores the key; a newer one echoes false when it
        did not anonymize: either way the copy is not used."""
        for echo in ({}, {"anonymize": False}, {"anonymize": "yes"}):
            with self.subTest(echo=echo):
                self.environment.anonymize = True
                job = self.new_job()
                answer = {
                    RUN: envelope({"db_name": "cosmos-lab_x", "job_id": "j1", **echo}),
                    CANCEL: envelope({"state": "error", "error": "Cancelled"}),
                }
                staging = self.run_against(answer, job)
                self.assertEqual(job.state, "error")
                self.assertEqual(job.error, NOT_CONFIRMED)
                # The copy on its way is stopped where the staging can.
                self.assertEqual(
                    [r["path"] for r in staging.received], [RUN, CANCEL]
                )
                self.assertEqual(staging.received[1]["json"]["job_id"], "j1")

    def test_not_confirmed_by_a_staging_without_cancel(self):
        self.environment.anonymize = True
        job = self.new_job()
        self.run_against({RUN: envelope({"db_name": "cosmos-lab_x", "job_id": "j1"})}, job)
        self.assertEqual(job.state, "error")
        self.assertEqual(job.error, NOT_CONFIRMED)

    def test_echo_not_needed_when_not_asked(self):
        job = self.new_job()
        self.run_against({RUN: envelope({"db_name": "cosmos-lab_x", "job_id": "j1"})}, job)
        self.assertEqual(job.state, "running")

    def test_environment_asking_later_is_obeyed_at_run(self):
        job = self.new_job()
        self.environment.anonymize = True
        answer = {RUN: envelope({"db_name": "x", "job_id": "j1", "anonymize": True})}
        staging = self.run_against(answer, job)
        self.assertTrue(job.anonymize)
        self.assertIs(staging.received[0]["json"]["anonymize"], True)

    def test_report_from_callback(self):
        self.environment.anonymize = True
        job = self.new_job()
        job.write({"state": "running", "staging_job_id": "j1", "database_name": "x"})
        job.run_callback(
            {
                "state": "done",
                "token": "secret-token",
                "job_id": "j1",
                "anonymized": {
                    "scripts": ["my_module/data/anonymize.sql"],
                    "tables": ["res_partner", "mail_message"],
                    "values": 1532,
                },
            }
        )
        self.assertEqual(job.state, "done")
        self.assertEqual(
            job.anonymize_report,
            "1532 values masked in tables res_partner, mail_message; "
            "module scripts: my_module/data/anonymize.sql.",
        )
        self.assertIn("are masked", done_mail_body(job))

    def test_report_without_scripts(self):
        job = self.new_job()
        report = job._format_anonymize_report({"tables": ["res_partner"], "values": 3})
        self.assertEqual(report, "3 values masked in tables res_partner; module scripts: none.")

    def test_report_from_status(self):
        job = self.new_job()
        job.write({"state": "running", "staging_job_id": "j1", "database_name": "x"})
        answer = {
            STATUS: envelope(
                {
                    "job_id": "j1",
                    "state": "done",
                    "phase": "done",
                    "progress": 1,
                    "anonymized": {"scripts": [], "tables": ["res_partner"], "values": 12},
                    "filestore": "zip",
                    "missing_attachments": 0,
                }
            )
        }
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            job.with_user(self.user).refresh_status()
        self.assertEqual(job.state, "done")
        self.assertEqual(
            job.anonymize_report, "12 values masked in tables res_partner; module scripts: none."
        )
        self.assertEqual(job.filestore, "zip")
        self.assertFalse(job.filestore_notice)

    def test_a_new_run_clears_the_report(self):
        job = self.new_job()
        job.write(
            {
                "state": "error",
                "anonymize_report": "old",
                "filestore": "none",
                "missing_attachments": 4,
            }
        )
        self.run_against({RUN: envelope({"db_name": "x", "job_id": "j2"})}, job)
        self.assertFalse(job.anonymize_report)
        self.assertFalse(job.filestore)
        self.assertEqual(job.missing_attachments, 0)


@tagged("post_install", "-at_install")
class TestFilestore(StagingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()

    def done(self, **report):
        job = self.new_job(suffix="david-test")
        job.write({"state": "running", "staging_job_id": "j1", "database_name": "cosmos-lab_x"})
        job.run_callback({"state": "done", "token": "secret-token", "job_id": "j1", **report})
        self.assertEqual(job.state, "done")
        return job

    def test_companion(self):
        job = self.done(
            filestore="companion cosmos-daily-1.filestore.tar.gz", missing_attachments=0
        )
        self.assertEqual(job.filestore, "companion cosmos-daily-1.filestore.tar.gz")
        self.assertEqual(job.missing_attachments, 0)
        self.assertFalse(job.filestore_notice)
        self.assertNotIn("no attachments", done_mail_body(job))

    def test_none_is_said_plainly_on_the_job_and_in_the_mail(self):
        job = self.done(filestore="none", missing_attachments=42)
        self.assertEqual(job.filestore, "none")
        self.assertEqual(job.missing_attachments, 42)
        self.assertIn("This copy has no attachments", job.filestore_notice)
        self.assertIn("This copy has no attachments", done_mail_body(job))

    def test_missing_files_are_counted(self):
        job = self.done(filestore="source /mnt/production/filestore/cosmos", missing_attachments=3)
        self.assertIn("3", job.filestore_notice)
        self.assertIn("source /mnt/production/filestore/cosmos", job.filestore_notice)
        self.assertIn("This copy has no attachments for 3 records", done_mail_body(job))

    def test_older_staging_says_nothing(self):
        job = self.done()
        self.assertFalse(job.filestore)
        self.assertFalse(job.filestore_notice)

    def test_garbage_is_ignored(self):
        job = self.done(filestore=7, missing_attachments="many", anonymized=["x"])
        self.assertFalse(job.filestore)
        self.assertEqual(job.missing_attachments, 0)
        self.assertFalse(job.anonymize_report)

    def test_said_in_the_users_language(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env.ref("base.module_numikube_staging")._update_translations("fr_FR")
        self.user.lang = "fr_FR"
        job = self.done(filestore="none", missing_attachments=2)
        self.assertIn("Cette copie n'a pas de pièces jointes", done_mail_body(job, "est prête"))
        self.assertIn(
            "Cette copie n'a pas de pièces jointes",
            job.with_context(lang="fr_FR").filestore_notice,
        )
