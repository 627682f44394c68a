# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged

from .common import StagingMixin


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

    def test_archive(self):
        self.environment.action_archive()
        self.assertFalse(
            self.env["staging.environment"].search([("id", "=", self.environment.id)])
        )
