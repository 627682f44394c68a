# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import logging
from urllib.parse import urlencode

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .staging_client import RUN_PATH
from .staging_environment import NAME_PATTERN

_logger = logging.getLogger(__name__)

# The sidecar's phases (rpc crate, Phase).
PHASES = [
    ("queued", "Queued"),
    ("downloading", "Downloading"),
    ("restoring", "Restoring"),
    ("neutralizing", "Neutralizing"),
    ("anonymizing", "Anonymizing"),
    ("finishing", "Finishing"),
    ("done", "Done"),
    ("error", "Error"),
]


class StagingJob(models.Model):
    """A request made to a staging environment: build a database from the newest
    production backup (prod2x) or drop databases (dropdb).

    Field and method names are those of the first numikube_staging module, so
    existing jobs and integrations keep working. This file holds the fields
    and the Run; the staging's answer to Run is read in staging_job_send, the
    progress and Cancel in staging_job_status, the callback in
    staging_job_callback."""

    _name = "staging.job"
    _description = "Staging Job"
    _order = "start_datetime desc, id desc"
    _inherit = ["mail.thread", "mail.activity.mixin"]

    environment_id = fields.Many2one(
        "staging.environment",
        required=True,
        tracking=True,
        default=lambda self: self._get_default_staging_environment(),
    )
    type_ = fields.Selection(
        [("prod2x", "New Database"), ("dropdb", "Drop Databases")],
        "Type",
        default="prod2x",
        required=True,
    )
    dropdb_database_names = fields.Text(
        "Database Names",
        help="Names of the databases to drop, separated by spaces or line breaks.",
    )
    suffix = fields.Char(tracking=True)
    timestamp = fields.Boolean(
        tracking=True,
        default=True,
        help="Put the date and time in the name of the new database.",
    )
    error = fields.Char(readonly=True, tracking=True, copy=False)
    traceback = fields.Text(readonly=True, copy=False)
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("running", "Running"),
            ("done", "Done"),
            ("error", "Error"),
        ],
        "Status",
        required=True,
        readonly=True,
        default="pending",
        tracking=True,
        copy=False,
    )
    start_datetime = fields.Datetime(
        "Start Time", readonly=True, tracking=True, copy=False
    )
    database_name = fields.Char(readonly=True, copy=False)
    dropdb_report = fields.Text(
        "Drop Report",
        readonly=True,
        copy=False,
        help="What the staging server dropped, did not find or refused to drop.",
    )
    user_id = fields.Many2one(
        "res.users",
        ondelete="restrict",
        default=lambda self: self.env.user,
    )
    partner_id = fields.Many2one(related="user_id.partner_id")
    staging_job_id = fields.Char(
        "Staging Job ID",
        readonly=True,
        copy=False,
        help="The id the staging server gave this run; only its callback is "
        "applied to the job.",
    )
    run_count = fields.Integer(
        "Runs",
        readonly=True,
        copy=False,
        help="How many times the job was run: the last part of the request id "
        "sent to the staging, which answers a repeated request only once.",
    )
    phase = fields.Selection(PHASES, readonly=True, copy=False)
    progress = fields.Float(
        readonly=True, copy=False, help="How much of the job is done, 0 to 100."
    )
    status_unsupported = fields.Boolean(
        "No Progress Reported",
        readonly=True,
        copy=False,
        help="The staging server is older and does not report the progress of "
        "its jobs.",
    )
    backup_key = fields.Char(
        tracking=True,
        help="The backup to restore. Empty: the newest one at the time of Run.",
    )
    backup_id = fields.Many2one(
        "staging.backup",
        compute="_compute_backup_id",
        inverse="_inverse_backup_id",
        domain="[('environment_id', '=', environment_id)]",
        help="The backup to restore. Empty: the newest one at the time of Run.",
    )
    offers_backups = fields.Boolean(related="environment_id.offers_backups")
    backup_used = fields.Char(
        "Backup Restored",
        readonly=True,
        copy=False,
        help="The backup the staging server restored, as it said.",
    )
    database_id = fields.Many2one(
        "staging.database",
        "Copy",
        compute="_compute_database_id",
        help="The copy on the staging server, as its environment last listed it.",
    )
    anonymize = fields.Boolean(
        compute="_compute_anonymize",
        store=True,
        readonly=False,
        precompute=True,
        tracking=True,
        help="The people (customers, contacts, portal users, employees) are "
        "masked in the copy. Set by the environment; the staging server must "
        "confirm it, or the job fails.",
    )
    environment_anonymize = fields.Boolean(
        "Environment Anonymizes", related="environment_id.anonymize"
    )
    anonymize_report = fields.Text(
        "Anonymization",
        readonly=True,
        copy=False,
        help="What the staging server masked in the copy, as it reported it.",
    )
    filestore = fields.Char(
        "Files From",
        readonly=True,
        copy=False,
        help="Where the copy's attachments came from, as the staging server "
        "said: zip (the backup's own), companion <archive>, source <folder> "
        "(production's filestore on the staging host), or none.",
    )
    missing_attachments = fields.Integer(
        readonly=True,
        copy=False,
        help="Attachments of the copy whose file is missing.",
    )
    filestore_notice = fields.Char(
        compute="_compute_filestore_notice",
        help="Said plainly when the copy lacks attachments' files.",
    )

    def _listed(self, model, name):
        """The record `name` of `model` as this job's environment last listed it."""
        self.ensure_one()
        return bool(name) and self.env[model].search(
            [("environment_id", "=", self.environment_id.id), ("name", "=", name)],
            limit=1,
        )

    @api.depends("backup_key", "environment_id")
    def _compute_backup_id(self):
        for job in self:
            job.backup_id = job._listed("staging.backup", job.backup_key)

    def _inverse_backup_id(self):
        for job in self:
            job.backup_key = job.backup_id.name or False

    @api.depends("database_name", "environment_id")
    def _compute_database_id(self):
        for job in self:
            job.database_id = job._listed("staging.database", job.database_name)

    @api.depends("environment_id")
    def _compute_anonymize(self):
        """Copied from the environment when the job is made for it. A job
        already run keeps what it asked."""
        for job in self:
            if job.state in (False, "pending", "error"):
                job.anonymize = job.environment_id.anonymize
            else:
                job.anonymize = job.anonymize

    @api.depends("filestore", "missing_attachments", "state", "type_")
    def _compute_filestore_notice(self):
        for job in self:
            job.filestore_notice = job._get_filestore_notice()

    def _get_filestore_notice(self):
        """A sentence when the copy lacks attachments' files, else False."""
        if self.type_ != "prod2x" or not self.filestore:
            return False
        if self.filestore == "none":
            return self.env._(
                "This copy has no attachments: the backup has no filestore "
                "and the staging server found none beside it. Documents and "
                "images of production do not open in it."
            )
        if self.missing_attachments > 0:
            return self.env._(
                "This copy has no attachments for %(count)s records: their "
                "files are missing from its filestore (%(origin)s).",
                count=self.missing_attachments,
                origin=self.filestore,
            )
        return False

    @api.onchange("environment_id")
    def _onchange_environment_id(self):
        """Offer the backups of the chosen environment, as it lists them now."""
        environment = self.environment_id._origin
        if environment and self.state in ("pending", "error"):
            environment._refresh_backups()
        if self.backup_id.environment_id != environment:
            self.backup_id = False

    def _get_default_staging_environment(self):
        environments = self.env["staging.environment"].search([], limit=2)
        return environments if len(environments) == 1 else False

    @api.depends("database_name")
    def _compute_display_name(self):
        for job in self:
            job.display_name = job.database_name or self.env._("New Staging Job")

    @api.constrains("suffix")
    def _check_suffix(self):
        for job in self:
            if job.suffix and not NAME_PATTERN.match(job.suffix):
                raise ValidationError(
                    self.env._(
                        "The suffix should not contain any spaces, "
                        "special characters, or uppercase letters"
                    )
                )

    @api.constrains("type_", "dropdb_database_names")
    def _check_dropdb_database_names(self):
        for job in self:
            if job.type_ == "dropdb" and not (job.dropdb_database_names or "").split():
                raise ValidationError(
                    self.env._("Give the names of the databases to drop.")
                )

    # ------------------------------------------------------------- access

    # What the staging, the callback and the Run own: users see them, only
    # administrators and the code paths that need them (as superuser) write
    # them. A user who could write staging_job_id could cancel someone else's
    # job on the staging; state, a Run never made.
    SYSTEM_FIELDS = (
        "state",
        "start_datetime",
        "error",
        "traceback",
        "database_name",
        "dropdb_report",
        "staging_job_id",
        "run_count",
        "phase",
        "progress",
        "status_unsupported",
        "backup_used",
        "anonymize_report",
        "filestore",
        "missing_attachments",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_system_fields(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._check_system_fields(vals)
        if "anonymize" in vals and not (self.env.su or self.env.is_system()):
            self._check_anonymize(vals)
        return super().write(vals)

    def _check_system_fields(self, vals):
        if self.env.su or self.env.is_system():
            return
        owned = sorted(set(vals) & set(self.SYSTEM_FIELDS))
        if owned:
            names = ", ".join(self._fields[name]._description_string(self.env) for name in owned)
            raise AccessError(
                self.env._(
                    "Only the staging server and administrators change %(fields)s "
                    "of a staging job: use the Run and Cancel buttons.",
                    fields=names,
                )
            )

    def _check_anonymize(self, vals):
        """A user may ask for a masked copy before the job runs, never for
        real data where the environment masks them."""
        asked = bool(vals["anonymize"])
        environment = (
            self.env["staging.environment"].browse(vals["environment_id"])
            if vals.get("environment_id")
            else None
        )
        for job in self:
            if (asked != job.anonymize and job.state not in ("pending", "error")) or (
                not asked and (environment or job.environment_id).anonymize
            ):
                raise AccessError(
                    self.env._(
                        "Only administrators change whether the copy of %(job)s is "
                        "anonymized: the environment decides.",
                        job=job.display_name,
                    )
                )

    # ------------------------------------------------------------------ run

    def run(self):
        """Send each job to its staging environment (the Run button).

        The job is committed as Running first; the staging is asked only after
        that commit (docs/contract.md "The flow"), so that a rolled-back or retried
        transaction never hides a copy that exists."""
        for job in self:
            job.check_access("write")
            if job.state not in ("pending", "error"):
                raise UserError(
                    self.env._(
                        "Only a pending job or a job in error can be run; "
                        "%(job)s is %(state)s.",
                        job=job.display_name,
                        state=job.state,
                    )
                )
            job._run_one()
        return True

    def _run_one(self):
        # Raises before anything changes when the callback URL cannot be built.
        self._get_callback_url()
        # What a previous run left (error, report, name, progress) is cleared
        # here, once. The count is raised in this transaction: a retried
        # transaction sends the same request id, a new Run a new one.
        values = {
            "state": "running",
            "start_datetime": fields.Datetime.now(),
            "error": False,
            "traceback": False,
            "dropdb_report": False,
            "staging_job_id": False,
            "phase": False,
            "progress": 0,
            "status_unsupported": False,
            "backup_used": False,
            "anonymize_report": False,
            "filestore": False,
            "missing_attachments": 0,
            "run_count": self.run_count + 1,
        }
        if self.type_ == "prod2x":
            values["database_name"] = False
            # The environment decides: a job made before it masked does too.
            values["anonymize"] = self.anonymize or self.environment_id.anonymize
        # The user may run the job (checked by run()); what the Run changes
        # is the system's.
        self.sudo().write(values)
        self._send_after_commit(RUN_PATH, self._get_webhook_data(), self._get_timeout())

    def _lock(self):
        """Lock the jobs' rows until the end of the transaction, and read them
        again: the run's answer, the callback, Cancel and the status are
        applied one after the other.

        When another transaction changed the rows meanwhile, PostgreSQL
        refuses (serialization failure) and Odoo runs the request again, with
        the other's changes: not an error worth a log line."""
        if self.ids:
            self.env.cr.execute(
                "SELECT id FROM staging_job WHERE id IN %s FOR UPDATE",
                [tuple(self.ids)],
                log_exceptions=False,
            )
            self.invalidate_recordset()

    def _get_timeout(self):
        return self.environment_id._get_timeout()

    def _set_error(self, error, traceback):
        _logger.info("Staging job %s failed: %s", self.id, error)
        self.sudo().write({"state": "error", "error": error, "traceback": traceback or False})

    def _get_webhook_data(self):
        """The run payload of docs/contract.md "Wire protocol"."""
        self.ensure_one()
        environment = self.environment_id
        data = {
            "token": environment.sudo().token,
            "client": environment.client,
            "type": self.type_,
            "timestamp": self.timestamp,
            "callback": self._get_callback_url(),
            "request_id": self._get_request_id(),
        }
        if self.type_ == "prod2x":
            data["level"] = environment.level
            data["suffix"] = self.suffix or None
            if self.backup_key:
                data["backup"] = self.backup_key
            if self.anonymize:
                # Only when asked: an older staging ignores it, and the
                # answer must echo it (staging_job_send).
                data["anonymize"] = True
        else:
            data["database_names"] = self.dropdb_database_names or ""
        if self.user_id.email:
            data["email"] = self.user_id.email
        return data

    def _get_request_id(self):
        """``<database.uuid>:<job id>:<run count>``: the staging answers a
        second request with the same id with the first one's answer."""
        uuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        return f"{uuid}:{self.id}:{self.run_count}"

    def _get_callback_url(self):
        base_url = self.env["ir.config_parameter"].sudo().get_param("web.base.url")
        if not base_url:
            raise ValidationError(
                self.env._(
                    "Can not run a staging because the web.base.url parameter "
                    "is not defined on the local instance."
                )
            )
        # The db parameter lets a multi-database production find this job.
        query = urlencode({"db": self.env.cr.dbname})
        return f"{base_url.rstrip('/')}/web/staging/callback/{self.id}?{query}"

    def action_open_database(self):
        """The copy's login page on the staging, in a new tab."""
        self.ensure_one()
        if not self.database_name:
            raise UserError(self.env._("This job has no database to open."))
        return {
            "type": "ir.actions.act_url",
            "url": self.environment_id._get_url(
                "/web/login?" + urlencode({"db": self.database_name})
            ),
            "target": "new",
        }
