# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import logging
import re
from datetime import datetime, timezone

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from .staging_client import (
    BACKUPS_PATH,
    DEFAULT_TIMEOUT,
    LIST_PATH,
    QUICK_TIMEOUT,
    StagingClient,
    StagingRouteMissing,
)

_logger = logging.getLogger(__name__)

# docs/contract.md "Names": suffix, client and level share this rule, and the sidecar
# checks it again, so a name refused here would be refused there too.
NAME_PATTERN = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")

# RFC 3339 fraction of a second: Python before 3.11 reads at most 6 digits.
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_datetime(value):
    """An RFC 3339 time of the sidecar as Odoo stores it (naive UTC), or
    False when there is none or it cannot be read."""
    if not value or not isinstance(value, str):
        return False
    text = _FRACTION.sub(r"\1", value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _logger.info("Unreadable time from the staging server: %r", value)
        return False
    if moment.tzinfo:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


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
    # drop databases on the staging server. Not required: data/neutralize.sql
    # blanks it in every copy of production.
    token = fields.Char(
        groups="base.group_system",
        copy=False,
        help="Same value as numikube_staging_token in the odoo.conf "
        "of the staging server.",
    )
    active = fields.Boolean(default=True)
    anonymize = fields.Boolean(
        help="Mask the people (customers, contacts, portal users, employees) "
        "in every copy made for this environment.",
    )
    database_selector_url = fields.Char(
        "Database Selector",
        compute="_compute_database_selector_url",
    )
    database_ids = fields.One2many(
        "staging.database",
        "environment_id",
        "Databases",
        readonly=True,
        help="The client's databases on this staging server, as it listed them "
        "when this form was last opened or refreshed.",
    )
    databases_refreshed_at = fields.Datetime(
        "Databases Listed At", readonly=True, copy=False
    )
    databases_message = fields.Char(
        "Databases Notice",
        readonly=True,
        copy=False,
        help="Why the list of databases could not be refreshed, if it could not.",
    )
    backup_ids = fields.One2many(
        "staging.backup", "environment_id", "Backups", readonly=True
    )
    offers_backups = fields.Boolean(
        "Offers a Choice of Backup",
        readonly=True,
        copy=False,
        help="The staging server answered the list of backups: a job may ask "
        "for an older backup than the newest. Older staging servers do not.",
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

    def _get_timeout(self):
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("numikube_staging.timeout", DEFAULT_TIMEOUT)
        )
        try:
            return float(value)
        except ValueError:
            return DEFAULT_TIMEOUT

    # ------------------------------------------------------ staging routes

    def _call_staging(self, path, body, timeout=None):
        """POST ``body`` (the token is added) to ``path`` of the staging and
        return the ``result`` of its Odoo JSON-RPC answer (see StagingClient).

        Raises StagingRouteMissing when the staging answers 404 (an older
        staging), else a UserError whose message is for the user."""
        self.ensure_one()
        return StagingClient(self, timeout).call(path, body)

    # ------------------------------------------------------------ copies

    def action_refresh_databases(self):
        """Ask the staging for the client's databases (``/web/staging/list``)
        and keep them in ``database_ids``; its backups too, which say whether
        it offers a choice of backup. Never raises for the staging's sake:
        what went wrong is shown on the form instead."""
        self.check_access("read")
        self._refresh_backups()
        for environment in self.sudo():
            try:
                result = environment._call_staging(
                    LIST_PATH,
                    {"client": environment.client},
                    timeout=min(environment._get_timeout(), QUICK_TIMEOUT),
                )
            except UserError as err:
                _logger.info(
                    "Staging environment %s: databases not listed: %s",
                    environment.id,
                    err,
                )
                environment.databases_message = str(err)
                continue
            if isinstance(result, dict):
                result = result.get("databases")
            environment._store_databases(result if isinstance(result, list) else [])
        return True

    def _store_databases(self, items):
        Database = self.env["staging.database"].sudo()
        kept = {database.name: database for database in self.database_ids}
        seen = set()
        for item in items:
            if not isinstance(item, dict) or not item.get("name") or item.get("template"):
                continue
            values = Database._values_from_staging(item)
            seen.add(values["name"])
            database = kept.get(values["name"])
            if database:
                database.write(values)
            else:
                Database.create({**values, "environment_id": self.id})
        (self.database_ids - self.database_ids.filtered(lambda d: d.name in seen)).unlink()
        self.write(
            {"databases_refreshed_at": fields.Datetime.now(), "databases_message": False}
        )

    # ----------------------------------------------------------- backups

    def _refresh_backups(self):
        """Ask the staging for the client's backups (``/web/staging/backups``).
        An older staging (404) is not offered the choice."""
        for environment in self.sudo():
            try:
                result = environment._call_staging(
                    BACKUPS_PATH,
                    {"client": environment.client},
                    timeout=min(environment._get_timeout(), QUICK_TIMEOUT),
                )
            except StagingRouteMissing:
                environment.backup_ids.unlink()
                environment.offers_backups = False
                continue
            except UserError as err:
                # Unreachable for now: keep what it said last time.
                _logger.info(
                    "Staging environment %s: backups not listed: %s",
                    environment.id,
                    err,
                )
                continue
            backups = result.get("backups") if isinstance(result, dict) else result
            environment._store_backups(backups if isinstance(backups, list) else [])
        return True

    def _store_backups(self, items):
        Backup = self.env["staging.backup"].sudo()
        kept = {backup.name: backup for backup in self.backup_ids}
        seen = set()
        for sequence, item in enumerate(items):
            if not isinstance(item, dict) or not item.get("key"):
                continue
            values = {
                "name": str(item["key"]),
                "sequence": sequence,
                "last_modified": parse_datetime(item.get("last_modified")),
                "size_bytes": float(item.get("size_bytes") or 0),
            }
            seen.add(values["name"])
            backup = kept.get(values["name"])
            if backup:
                backup.write(values)
            else:
                Backup.create({**values, "environment_id": self.id})
        (self.backup_ids - self.backup_ids.filtered(lambda b: b.name in seen)).unlink()
        self.offers_backups = True
