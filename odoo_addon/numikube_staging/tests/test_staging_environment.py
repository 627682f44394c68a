# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from datetime import datetime

from odoo.exceptions import ValidationError
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import TransactionCase, tagged

from .common import LoopbackServer, StagingMixin, closed_port, envelope, odoo_error

LIST = "/web/staging/list"
BACKUPS = "/web/staging/backups"

COPY = {
    "name": "cosmos-lab_20261124_1302_david-test",
    "size_bytes": 1009778688,
    "created_at": "2026-11-24T13:02:41Z",
    "made_by_staging": True,
    "job_id": "j1",
    "backup": "cosmos_2026-11-24_03-00-00.zip",
    "requested_by": "runner@example.com",
    "expires_at": "2026-12-08T13:02:41+00:00",
}


@tagged("post_install", "-at_install")
class TestStagingEnvironment(StagingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()

    def test_database_selector_url(self):
        self.assertEqual(
            self.environment.database_selector_url,
            "https://cosmos-lab.example.com/web/database/selector",
        )
        self.environment.url = "https://cosmos-lab.example.com/"
        self.assertEqual(
            self.environment.database_selector_url,
            "https://cosmos-lab.example.com/web/database/selector",
        )

    def test_url_without_scheme_is_plain_http(self):
        # Environments of the first module were often saved as host:port.
        self.environment.url = "localhost:8069"
        self.assertEqual(
            self.environment._get_url("/web/staging/run"),
            "http://localhost:8069/web/staging/run",
        )

    def test_client_follows_the_name_rule(self):
        for client in ("cosmos", "cosmos_2", "big-client"):
            self.environment.client = client
        for client in ("Cosmos", "cos mos", "cosmos-", "-cosmos", "cos--mos", "é"):
            with self.subTest(client=client), self.assertRaises(ValidationError):
                self.environment.client = client
                self.environment.flush_recordset()

    def test_neutralize_blanks_the_tokens(self):
        """What ``odoo-bin neutralize`` and the sidecar run in a copy of
        production: no staging token is left in it."""
        archived = self.environment.copy({"name": "Old", "token": "old-token", "active": False})
        [query] = get_neutralization_queries(["numikube_staging"])
        self.env.flush_all()
        self.env.cr.execute(query)
        self.env.invalidate_all()
        self.assertFalse(self.environment.token)
        self.assertFalse(archived.token)
        self.env.cr.execute("SELECT count(*) FROM staging_environment WHERE token IS NOT NULL")
        self.assertEqual(self.env.cr.fetchone()[0], 0)

    def test_archive(self):
        self.environment.action_archive()
        self.assertFalse(
            self.env["staging.environment"].search([("id", "=", self.environment.id)])
        )

    # ------------------------------------------------------------ copies

    def refresh(self, answer):
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            self.environment.with_user(self.user).action_refresh_databases()
        return staging

    def test_refresh_databases(self):
        other = {"name": "cosmos-lab_old", "size_bytes": 5, "made_by_staging": False}
        template = {"name": "numikube_tpl_cosmos", "size_bytes": 5, "template": True}
        staging = self.refresh({LIST: envelope([COPY, other, template])})
        self.assertIn(
            {"path": LIST, "json": {"token": "secret-token", "client": "cosmos"}},
            staging.received,
        )
        databases = self.environment.database_ids
        self.assertEqual(
            sorted(databases.mapped("name")),
            ["cosmos-lab_20261124_1302_david-test", "cosmos-lab_old"],
        )
        copy = databases.filtered(lambda d: d.name == COPY["name"])
        self.assertEqual(copy.size_bytes, 1009778688)
        self.assertEqual(copy.created_at, datetime(2026, 11, 24, 13, 2, 41))
        self.assertEqual(copy.expires_at, datetime(2026, 12, 8, 13, 2, 41))
        self.assertEqual(copy.backup, "cosmos_2026-11-24_03-00-00.zip")
        self.assertEqual(copy.requested_by, "runner@example.com")
        self.assertEqual(copy.staging_job_id, "j1")
        self.assertTrue(copy.made_by_staging)
        self.assertTrue(self.environment.databases_refreshed_at)
        self.assertFalse(self.environment.databases_message)

        # A second refresh updates, adds and removes.
        self.refresh({LIST: envelope([dict(COPY, size_bytes=2000)])})
        self.assertEqual(self.environment.database_ids, copy)
        self.assertEqual(copy.size_bytes, 2000)

    def test_refresh_databases_older_staging(self):
        self.refresh({})
        self.assertFalse(self.environment.database_ids)
        self.assertEqual(
            self.environment.databases_message,
            "This staging is older and does not list its databases.",
        )

    def test_refresh_databases_errors_are_shown_not_raised(self):
        self.refresh({LIST: odoo_error("The staging token is wrong.")})
        self.assertEqual(self.environment.databases_message, "The staging token is wrong.")
        self.environment.url = f"http://127.0.0.1:{closed_port()}"
        self.environment.action_refresh_databases()
        self.assertIn("could not be reached", self.environment.databases_message)

    # ----------------------------------------------------------- backups

    def test_backups_offered(self):
        backups = {
            "backups": [
                {
                    "key": "cosmos_2026-11-24_03-00-00.zip",
                    "last_modified": "2026-11-24T03:05:00Z",
                    "size_bytes": 368 * 1024 * 1024,
                },
                {
                    "key": "cosmos_2026-11-23_03-00-00.zip",
                    "last_modified": "2026-11-23T03:05:00Z",
                    "size_bytes": 360 * 1024 * 1024,
                },
            ]
        }
        with LoopbackServer({BACKUPS: envelope(backups)}) as staging:
            self.environment.url = staging.url
            self.environment._refresh_backups()
            self.assertEqual(
                staging.received,
                [{"path": BACKUPS, "json": {"token": "secret-token", "client": "cosmos"}}],
            )
        self.assertTrue(self.environment.offers_backups)
        self.assertEqual(
            self.environment.backup_ids.mapped("name"),
            ["cosmos_2026-11-24_03-00-00.zip", "cosmos_2026-11-23_03-00-00.zip"],
        )
        newest = self.environment.backup_ids[0]
        self.assertEqual(newest.last_modified, datetime(2026, 11, 24, 3, 5))
        self.assertIn("368 MB", newest.display_name)
        # The job form offers them, in that order.
        job = self.new_job()
        self.assertTrue(job.offers_backups)
        self.assertEqual(
            self.env["staging.backup"].search(
                [("environment_id", "=", self.environment.id)]
            ),
            self.environment.backup_ids,
        )

    def test_backups_not_offered_by_older_staging(self):
        self.env["staging.backup"].create(
            {"environment_id": self.environment.id, "name": "stale.zip"}
        )
        self.environment.offers_backups = True
        with LoopbackServer({}) as staging:
            self.environment.url = staging.url
            self.environment._refresh_backups()
        self.assertFalse(self.environment.offers_backups)
        self.assertFalse(self.environment.backup_ids)
        self.assertFalse(self.new_job().offers_backups)

    def test_backups_refreshed_with_the_databases(self):
        answer = {
            LIST: envelope([]),
            BACKUPS: envelope({"backups": [{"key": "cosmos-daily-1.dump"}]}),
        }
        self.refresh(answer)
        self.assertTrue(self.environment.offers_backups)
        self.assertEqual(self.environment.backup_ids.mapped("name"), ["cosmos-daily-1.dump"])

    def test_backups_refreshed_when_the_job_form_chooses_the_environment(self):
        answer = {BACKUPS: envelope({"backups": [{"key": "cosmos-daily-1.dump"}]})}
        with LoopbackServer(answer) as staging:
            self.environment.url = staging.url
            job = self.env["staging.job"].with_user(self.user).new({})
            job.environment_id = self.environment
            job._onchange_environment_id()
            self.assertEqual(len(staging.received), 1)
        self.assertEqual(self.environment.backup_ids.mapped("name"), ["cosmos-daily-1.dump"])
