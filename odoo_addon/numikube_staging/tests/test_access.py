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
