# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from urllib.parse import urlencode

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression

from .staging_client import EXTEND_PATH
from .staging_environment import parse_datetime


def format_size(size_bytes):
    """``size_bytes`` as people read it: 963 MB, 1.4 GB."""
    if not size_bytes:
        return ""
    size = float(size_bytes)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            break
        size /= 1024
    if unit == "bytes" or size >= 10:
        return f"{size:.0f} {unit}"
    return f"{size:.1f} {unit}"


class StagingDatabase(models.Model):
    """A database on a staging server, as the staging listed it
    (``/web/staging/list``). Kept only as the environment's last answer:
    refreshing the environment replaces these records."""

    _name = "staging.database"
    _description = "Staging Database"
    _order = "created_at desc nulls last, name"

    environment_id = fields.Many2one(
        "staging.environment", required=True, ondelete="cascade", readonly=True
    )
    name = fields.Char(required=True, readonly=True)
    size_bytes = fields.Float("Size (bytes)", digits=(20, 0), readonly=True)
    size = fields.Char(compute="_compute_size")
    created_at = fields.Datetime("Created", readonly=True)
    expires_at = fields.Datetime(
        "Expires",
        readonly=True,
        help="When the staging server drops this copy. Empty: never.",
    )
    backup = fields.Char(readonly=True, help="The backup the copy was made from.")
    requested_by = fields.Char(readonly=True, help="E-mail of the user who asked for it.")
    made_by_staging = fields.Boolean(
        readonly=True,
        help="The numikube-staging service made this database (it carries its "
        "marker); only those can be dropped.",
    )
    staging_job_id = fields.Char("Staging Job ID", readonly=True)
    job_id = fields.Many2one(
        "staging.job", compute="_compute_job_id", help="The job that asked for it."
    )

    @api.depends("size_bytes")
    def _compute_size(self):
        for database in self:
            database.size = format_size(database.size_bytes)

    @api.depends("name", "staging_job_id", "environment_id")
    def _compute_job_id(self):
        Job = self.env["staging.job"]
        for database in self:
            domain = [
                ("environment_id", "=", database.environment_id.id),
                ("type_", "=", "prod2x"),
                ("database_name", "=", database.name),
            ]
            if database.staging_job_id:
                domain = expression.OR(
                    [[("staging_job_id", "=", database.staging_job_id)], domain]
                )
            database.job_id = Job.search(domain, limit=1)

    @api.model
    def _values_from_staging(self, item):
        """Field values of one entry of ``staging_list``."""
        return {
            "name": str(item["name"]),
            "size_bytes": float(item.get("size_bytes") or 0),
            "created_at": parse_datetime(item.get("created_at")),
            "expires_at": parse_datetime(item.get("expires_at")),
            "backup": item.get("backup") or False,
            "requested_by": item.get("requested_by") or False,
            "made_by_staging": bool(item.get("made_by_staging")),
            "staging_job_id": str(item["job_id"]) if item.get("job_id") else False,
        }

    def _get_login_url(self):
        self.ensure_one()
        return self.environment_id._get_url(
            "/web/login?" + urlencode({"db": self.name})
        )

    def action_open(self):
        """The staging's login page for this database, in a new tab."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_url",
            "url": self._get_login_url(),
            "target": "new",
        }

    def action_drop(self):
        """Make and run a Drop Databases job for these databases, so that the
        drop shows in Jobs like any other; open it."""
        if not self:
            return False
        environment = self.environment_id
        if len(environment) != 1:
            raise UserError(
                self.env._("Drop databases of one staging environment at a time.")
            )
        job = self.env["staging.job"].create(
            {
                "environment_id": environment.id,
                "type_": "dropdb",
                "dropdb_database_names": "\n".join(self.mapped("name")),
            }
        )
        job.run()
        return {
            "type": "ir.actions.act_window",
            "res_model": "staging.job",
            "res_id": job.id,
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "current",
        }

    def action_extend(self):
        """Keep longer: the staging pushes the expiry back
        (``/web/staging/extend``) and answers the new one."""
        self.check_access("read")
        for database in self:
            result = database.environment_id._call_staging(
                EXTEND_PATH, {"db_name": database.name}
            )
            expires_at = parse_datetime(
                result.get("expires_at") if isinstance(result, dict) else False
            )
            database.sudo().expires_at = expires_at
        return True
