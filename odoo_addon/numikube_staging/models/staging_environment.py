# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError

# DESIGN.md "Names": suffix, client and level share this rule, and the sidecar
# checks it again, so a name refused here would be refused there too.
NAME_PATTERN = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")


class StagingEnvironment(models.Model):
    """A staging Odoo (lab, test, ...) that builds databases for this production."""

    _name = "staging.environment"
    _description = "Staging Environment"
    _order = "name"

    name = fields.Char(required=True)
    url = fields.Char(
        "URL",
        required=True,
        help="Address of the staging Odoo, e.g. https://cosmos-lab.example.com",
    )
    client = fields.Char(
        required=True,
        help="Technical name of the client, the start of the backup names "
        "and of the database names (e.g. cosmos).",
    )
    level = fields.Selection(
        [("lab", "Lab"), ("test", "Test"), ("ecom", "Ecom")],
        required=True,
        default="lab",
    )
    # Only Settings administrators may read it: whoever knows it can create and
    # drop databases on the staging server.
    token = fields.Char(
        groups="base.group_system",
        copy=False,
        help="Same value as numikube_staging_token in the odoo.conf "
        "of the staging server.",
    )
    active = fields.Boolean(default=True)
    database_selector_url = fields.Char(
        "Database Selector",
        compute="_compute_database_selector_url",
    )

    @api.depends("url")
    def _compute_database_selector_url(self):
        for environment in self:
            environment.database_selector_url = (
                environment._get_url("/web/database/selector")
                if environment.url
                else False
            )

    @api.constrains("client")
    def _check_client(self):
        for environment in self:
            if not NAME_PATTERN.match(environment.client or ""):
                raise ValidationError(
                    self.env._(
                        "The client %(client)r should contain only lowercase "
                        "letters, digits, '_' and single '-' between them.",
                        client=environment.client,
                    )
                )

    def _get_url(self, path):
        """``path`` on this environment's server. Older records hold URLs such
        as ``localhost:8069``: those are taken as plain HTTP."""
        self.ensure_one()
        base = self.url.strip().rstrip("/")
        if "://" not in base:
            base = f"http://{base}"
        return base + path
