# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import hmac
import logging
import traceback as tb
from urllib.parse import urlencode

import requests

from odoo import SUPERUSER_ID, api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .staging_environment import (
    CANCEL_PATH,
    NAME_PATTERN,
    QUICK_TIMEOUT,
    STATUS_PATH,
    StagingRouteMissing,
)

_logger = logging.getLogger(__name__)

# How much of an unexpected answer is kept in the job's traceback.
MAX_DETAIL = 4000
# The sidecar's phases (rpc crate, Phase).
PHASES = [
    ("queued", "Queued"),
    ("downloading", "Downloading"),
    ("restoring", "Restoring"),
    ("neutralizing", "Neutralizing"),
    ("finishing", "Finishing"),
    ("done", "Done"),
    ("error", "Error"),
]


class StagingJob(models.Model):
    """A request made to a staging environment: build a database from the newest
    production backup (prod2x) or drop databases (dropdb).

    Field and method names are those of the first numikube_staging module, so
    existing jobs and integrations keep working."""

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

    # ------------------------------------------------------------------ run

    def run(self):
        """Send each job to its staging environment (the Run button).

        The job is committed as Running first; the staging is asked only after
        that commit (DESIGN.md "The flow"), so that a rolled-back or retried
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
            "run_count": self.run_count + 1,
        }
        if self.type_ == "prod2x":
            values["database_name"] = False
        self.write(values)
        self._send_after_commit(
            self.environment_id._get_url("/web/staging/run"),
            self._get_webhook_data(),
            self._get_timeout(),
        )

    def _send_after_commit(self, url, payload, timeout):
        """Post ``payload`` once this transaction is committed, and write the
        answer through a cursor of its own."""
        registry = self.env.registry
        uid, context = self.env.uid, dict(self.env.context)
        job_id, run_count = self.id, self.run_count

        def send():
            with registry.cursor() as cr:
                env = api.Environment(cr, uid, context)
                job = env["staging.job"].browse(job_id).sudo()
                job._send_run(url, payload, timeout, run_count)

        self.env.cr.postcommit.add(send)

    def _send_run(self, url, payload, timeout, run_count):
        # The row stays locked until the answer is written: a callback that
        # comes first (a copy from a kept template takes under a second)
        # waits for it, and then finds the job id it must match.
        self._lock()
        if not self.exists() or self.state != "running" or self.run_count != run_count:
            _logger.info("Staging job %s changed before it was sent: not sent", self.id)
            return
        try:
            response = requests.post(url, json=payload, timeout=timeout)
        except requests.Timeout as err:
            return self._set_error(
                self.env._(
                    "The staging server %(url)s did not answer in time. "
                    "Try again later or open a ticket.",
                    url=url,
                ),
                str(err),
            )
        except requests.RequestException as err:
            return self._set_error(
                self.env._(
                    "The staging server %(url)s could not be reached. "
                    "Check the environment's URL or try again later.",
                    url=url,
                ),
                str(err),
            )
        try:
            self._handle_response(response)
        except Exception:  # the job must not stay Running for ever
            _logger.exception("Staging job %s: the answer could not be applied", self.id)
            self.env.cr.rollback()
            self._lock()
            self._set_error(
                self.env._("The staging server's answer could not be applied."),
                tb.format_exc()[-MAX_DETAIL:],
            )

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

    def _handle_response(self, response):
        if response.status_code != 200:
            return self._set_error(
                self.env._(
                    "The staging server answered with HTTP error %(code)s "
                    "%(reason)s.",
                    code=response.status_code,
                    reason=response.reason or "",
                ),
                response.text[:MAX_DETAIL],
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or not ("result" in data or "error" in data):
            return self._set_error(
                self.env._(
                    "The staging server gave an answer that is not a JSON-RPC "
                    "response. Is the environment's URL that of a staging Odoo?"
                ),
                response.text[:MAX_DETAIL],
            )
        if data.get("error"):
            return self._handle_odoo_error_response(data["error"])
        result = data.get("result")
        result = result if isinstance(result, dict) else {}
        if self.type_ == "dropdb":
            return self._handle_dropdb_success(result)
        return self._handle_prod2x_running(result)

    def _handle_prod2x_running(self, result):
        values = {
            "state": "running",
            "database_name": result.get("db_name") or False,
            "staging_job_id": str(result["job_id"]) if result.get("job_id") else False,
            "backup_used": result.get("backup") or False,
        }
        self.write(values)
        if self.backup_key and result.get("backup") != self.backup_key:
            # An older staging ignores the key and restores the newest backup.
            self._set_error(
                self.env._(
                    "The staging server did not confirm that it restores the "
                    "backup %(backup)s: it is probably older and restores the "
                    "newest backup instead. Drop %(database)s if it appears, "
                    "and run the job again without choosing a backup.",
                    backup=self.backup_key,
                    database=self.database_name or "",
                ),
                str(result)[:MAX_DETAIL],
            )

    def _handle_dropdb_success(self, result):
        self.write({"state": "done", "dropdb_report": self._format_dropdb_report(result)})
        dropped = [str(name) for name in result.get("dropped") or []]
        if dropped:
            self.env["staging.database"].sudo().search(
                [
                    ("environment_id", "=", self.environment_id.id),
                    ("name", "in", dropped),
                ]
            ).unlink()

    def _format_dropdb_report(self, result):
        """One line per outcome. Older stagings answer ``{"status": "done"}``
        without details."""
        lines = []
        if result.get("dropped"):
            lines.append(
                self.env._("Dropped: %s", ", ".join(map(str, result["dropped"])))
            )
        if result.get("missing"):
            lines.append(
                self.env._("Not found: %s", ", ".join(map(str, result["missing"])))
            )
        for refused in result.get("refused") or []:
            if isinstance(refused, dict):
                lines.append(
                    self.env._(
                        "Refused: %(name)s (%(reason)s)",
                        name=refused.get("name"),
                        reason=refused.get("reason"),
                    )
                )
            else:
                lines.append(self.env._("Refused: %s", refused))
        return "\n".join(lines) or self.env._("The staging server dropped the databases.")

    def _handle_odoo_error_response(self, error):
        error = error if isinstance(error, dict) else {"message": str(error)}
        data = error.get("data") if isinstance(error.get("data"), dict) else {}
        message = (
            data.get("message")
            or error.get("message")
            or self.env._("The staging server refused the job.")
        )
        debug = data.get("debug") or ""
        self._set_error(message, debug.replace("\\n", "\n"))

    def _set_error(self, error, traceback):
        _logger.info("Staging job %s failed: %s", self.id, error)
        self.write({"state": "error", "error": error, "traceback": traceback or False})

    def _get_webhook_data(self):
        """The run payload of DESIGN.md "Wire protocol"."""
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

    # -------------------------------------------------------------- status

    def refresh_status(self):
        """Ask the staging where each running job stands
        (``/web/staging/status``) and keep its phase and progress; the form
        calls it every few seconds. An older staging (404) is asked once."""
        self.check_access("read")
        # Whoever may read the job may see it move; the write is the system's.
        for job in self.sudo():
            if (
                job.state != "running"
                or job.type_ != "prod2x"
                or job.status_unsupported
                or not job.staging_job_id
            ):
                continue
            try:
                result = job.environment_id._call_staging(
                    STATUS_PATH,
                    {"job_id": job.staging_job_id},
                    timeout=min(job._get_timeout(), QUICK_TIMEOUT),
                )
            except StagingRouteMissing:
                job.status_unsupported = True
                continue
            except UserError as err:
                _logger.info("Staging job %s: no status: %s", job.id, err)
                continue
            job._apply_status(result if isinstance(result, dict) else {})
        return True

    def _apply_status(self, result):
        if result.get("job_id") and str(result["job_id"]) != self.staging_job_id:
            return
        values = {}
        if result.get("phase") in dict(PHASES):
            values["phase"] = result["phase"]
        progress = result.get("progress")
        if isinstance(progress, (int, float)) and not isinstance(progress, bool):
            # 0..1 on the wire; it never goes back.
            values["progress"] = max(
                self.progress, min(100.0, max(0.0, round(progress * 100, 1)))
            )
        if result.get("backup") and not self.backup_used:
            values["backup_used"] = result["backup"]
        if result.get("state") in ("done", "error"):
            # The callback may be on its way: whichever comes first ends the job.
            self._lock()
            if self.state == "running":
                # Ended by the system, as by the callback, not by whoever
                # watched the form.
                self.with_user(SUPERUSER_ID)._apply_end(
                    {"state": result["state"], "error": result.get("error")}, values
                )
            return
        values = {key: value for key, value in values.items() if self[key] != value}
        if values:
            self.write(values)

    # -------------------------------------------------------------- cancel

    def action_cancel(self):
        """Stop a running job on the staging (``/web/staging/cancel``); the job
        goes to Error and can be run again."""
        for job in self:
            job.check_access("write")
            job._lock()
            if job.state != "running" or job.type_ != "prod2x":
                raise UserError(
                    self.env._(
                        "Only a running New Database job can be cancelled; "
                        "%(job)s is %(state)s.",
                        job=job.display_name,
                        state=job.state,
                    )
                )
            if job.staging_job_id:
                # StagingRouteMissing (an older staging) is a UserError that
                # says so; the job goes on.
                job.environment_id._call_staging(
                    CANCEL_PATH, {"job_id": job.staging_job_id}
                )
            job.write(
                {
                    "state": "error",
                    "error": self.env._("Cancelled by %s", self.env.user.name),
                    "traceback": False,
                    "phase": False,
                }
            )
        return True

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

    # ------------------------------------------------------------- callback

    def run_callback(self, data):
        """Apply the staging's callback ``data`` (DESIGN.md "Callback") and
        e-mail the job's user.

        Every callback with the right token is answered with success, applied
        or not: a late one (a cancelled or earlier run of the job) is neither
        applied nor retried by the staging."""
        self.ensure_one()
        self._check_callback_token(data)
        self._lock()
        given = data.get("job_id")
        if self.state != "running":
            _logger.info(
                "Staging job %s is %s: callback not applied", self.id, self.state
            )
        elif given and str(given) != (self.staging_job_id or ""):
            _logger.info(
                "Staging job %s: callback of staging job %s, not of the current "
                "run %s: not applied",
                self.id,
                given,
                self.staging_job_id,
            )
        else:
            self._apply_end(data)
        return True

    def _apply_end(self, data, values=None):
        values = dict(values or {})
        if data.get("state") == "done":
            values.update(
                {
                    "state": "done",
                    "error": False,
                    "traceback": False,
                    "phase": "done",
                    "progress": 100,
                }
            )
            self.write(values)
            self._send_message("numikube_staging.staging_job_done_template")
        else:
            values.update(
                {
                    "state": "error",
                    "phase": "error",
                    "error": data.get("error")
                    or self.env._("The staging server reported an error."),
                    # Older productions read "traceback", older stagings sent
                    # "stacktrace": accept either.
                    "traceback": data.get("traceback") or data.get("stacktrace") or False,
                }
            )
            self.write(values)
            self._send_message("numikube_staging.staging_job_failed_template")

    def _check_callback_token(self, data):
        expected = self.environment_id.sudo().token or ""
        given = data.get("token")
        if not (
            expected
            and isinstance(given, str)
            and hmac.compare_digest(expected.encode(), given.encode())
        ):
            raise AccessError(self.env._("Wrong given staging token"))

    def _send_message(self, template_xmlid):
        template = self.env.ref(template_xmlid)
        # mail_notify_author: the user who ran the job may also be the author
        # of the message, and must get the e-mail all the same.
        self.with_context(mail_notify_author=True).message_post_with_source(
            template,
            subtype_xmlid="mail.mt_comment",
            partner_ids=self.user_id.partner_id.ids,
        )
