# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged

from .common import StagingMixin


@tagged("post_install", "-at_install")
class TestAccess(StagingMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()
        cls.employee = cls.env["res.users"].create(
            {
                "name": "Plain Employee",
                "login": "plain_employee",
                "groups_id": [Command.set(cls.env.ref("base.group_user").ids)],
            }
        )
        cls.settings_admin = cls.env["res.users"].create(
            {
                "name": "Settings Admin",
                "login": "settings_admin",
                "groups_id": [Command.set(cls.env.ref("base.group_system").ids)],
            }
        )

    def test_group_in_admin_light_category(self):
        self.assertEqual(self.group_run_staging.category_id.name, "Admin Light")
        self.assertEqual(self.group_run_staging.full_name, "Admin Light / Run Staging")
        self.assertIn(self.env.ref("base.user_admin"), self.group_run_staging.users)

    def test_run_staging_user_reads_environments_but_not_tokens(self):
        environment = self.environment.with_user(self.user)
        self.assertEqual(environment.name, "Lab")
        self.assertEqual(environment.client, "cosmos")
        with self.assertRaises(AccessError):
            environment.read(["token"])
        self.assertNotIn("token", environment.fields_get())
        with self.assertRaises(AccessError):
            environment.write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            self.env["staging.environment"].with_user(self.user).create(
                {"name": "X", "url": "http://x", "client": "x"}
            )
        with self.assertRaises(AccessError):
            environment.unlink()

    def test_run_staging_user_creates_reads_writes_jobs_but_not_delete(self):
        job = self.new_job(suffix="a").with_user(self.user)
        job.write({"suffix": "b"})
        self.assertEqual(job.read(["suffix"])[0]["suffix"], "b")
        with self.assertRaises(AccessError):
            job.unlink()

    def test_plain_employee_has_no_access(self):
        job = self.new_job()
        with self.assertRaises(AccessError):
            job.with_user(self.employee).read(["state"])
        with self.assertRaises(AccessError):
            self.environment.with_user(self.employee).read(["name"])

    def test_settings_admin_has_full_access(self):
        environment = self.environment.with_user(self.settings_admin)
        self.assertEqual(environment.token, "secret-token")
        environment.write({"token": "new-token"})
        job = self.new_job().with_user(self.settings_admin)
        job.write({"suffix": "x"})
        job.unlink()
        environment.unlink()

    def test_menus(self):
        menu_staging = self.env.ref("numikube_staging.menu_staging")
        menu_jobs = self.env.ref("numikube_staging.menu_staging_job")
        menu_environments = self.env.ref("numikube_staging.menu_staging_environment")
        Menu = self.env["ir.ui.menu"]

        visible = Menu.with_user(self.user)._visible_menu_ids()
        self.assertIn(menu_jobs.id, visible)
        self.assertIn(menu_staging.id, visible)
        self.assertNotIn(menu_environments.id, visible)

        visible = Menu.with_user(self.employee)._visible_menu_ids()
        self.assertNotIn(menu_staging.id, visible)
        self.assertNotIn(menu_jobs.id, visible)

        visible = Menu.with_user(self.settings_admin)._visible_menu_ids()
        self.assertIn(menu_jobs.id, visible)
        self.assertIn(menu_environments.id, visible)


@tagged("post_install", "-at_install")
class TestRecordRules(StagingMixin, TransactionCase):
    """Run Staging users read every job and copy; they change, run and cancel
    only their own jobs (user_id); administrators everything."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()
        cls.other = cls.env["res.users"].create(
            {
                "name": "Other Runner",
                "login": "other_runner",
                "groups_id": [Command.set(cls.group_run_staging.ids)],
            }
        )
        cls.settings_admin = cls.env["res.users"].create(
            {
                "name": "Settings Admin",
                "login": "settings_admin",
                "groups_id": [Command.set(cls.env.ref("base.group_system").ids)],
            }
        )
        cls.job = cls.new_job(suffix="mine")
        cls.database = cls.env["staging.database"].create(
            {"environment_id": cls.environment.id, "name": "cosmos-lab_x"}
        )

    def test_others_read_every_job_and_copy(self):
        Job = self.env["staging.job"].with_user(self.other)
        self.assertIn(self.job, Job.search([]))
        self.assertEqual(self.job.with_user(self.other).suffix, "mine")
        database = self.database.with_user(self.other)
        self.assertEqual(database.name, "cosmos-lab_x")
        self.assertIn(database, self.environment.with_user(self.other).database_ids)

    def test_others_do_not_change_run_or_cancel_a_job(self):
        job = self.job.with_user(self.other)
        with self.assertRaises(AccessError):
            job.write({"suffix": "theirs"})
        with self.assertRaises(AccessError):
            job.run()
        self.job.state = "running"
        with self.assertRaises(AccessError):
            job.action_cancel()
        self.assertEqual(self.job.state, "running")
        self.assertEqual(self.job.suffix, "mine")

    def test_no_job_for_someone_else(self):
        with self.assertRaises(AccessError):
            self.env["staging.job"].with_user(self.other).create(
                {"environment_id": self.environment.id, "user_id": self.user.id}
            )

    def test_owner_changes_own_job(self):
        self.job.with_user(self.user).write({"suffix": "mine2"})
        self.assertEqual(self.job.suffix, "mine2")

    def test_copies_are_read_only_for_run_staging(self):
        with self.assertRaises(AccessError):
            self.database.with_user(self.user).write({"name": "renamed"})
        with self.assertRaises(AccessError):
            self.env["staging.database"].with_user(self.user).create(
                {"environment_id": self.environment.id, "name": "made"}
            )
        with self.assertRaises(AccessError):
            self.env["staging.backup"].with_user(self.user).create(
                {"environment_id": self.environment.id, "name": "made"}
            )

    def test_administrators_do_everything(self):
        job = self.job.with_user(self.settings_admin)
        job.write({"suffix": "admin"})
        job.state = "running"
        job.action_cancel()
        self.assertEqual(self.job.error, "Cancelled by Settings Admin")
        self.database.with_user(self.settings_admin).write({"backup": "x"})
        job.unlink()
