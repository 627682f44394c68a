# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models

from .staging_database import format_size


class StagingBackup(models.Model):
    """A backup of the client that the staging may restore, as it listed them
    (``/web/staging/backups``), newest first. Offered on a new job only by a
    staging that answers that route."""

    _name = "staging.backup"
    _description = "Staging Backup"
    _order = "sequence, id"

    environment_id = fields.Many2one(
        "staging.environment", required=True, ondelete="cascade", readonly=True
    )
    name = fields.Char("Key", required=True, readonly=True)
    sequence = fields.Integer(readonly=True)
    last_modified = fields.Datetime(readonly=True)
    size_bytes = fields.Float("Size (bytes)", digits=(20, 0), readonly=True)
    size = fields.Char(compute="_compute_size")

    @api.depends("size_bytes")
    def _compute_size(self):
        for backup in self:
            backup.size = format_size(backup.size_bytes)

    @api.depends("name", "last_modified", "size_bytes")
    def _compute_display_name(self):
        for backup in self:
            details = [
                fields.Datetime.to_string(
                    fields.Datetime.context_timestamp(backup, backup.last_modified)
                )[:16]
                if backup.last_modified
                else "",
                format_size(backup.size_bytes),
            ]
            details = ", ".join(detail for detail in details if detail)
            backup.display_name = f"{backup.name} ({details})" if details else backup.name
