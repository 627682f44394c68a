# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

import hmac
import logging
from urllib.parse import urlencode

import requests

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from .staging_environment import NAME_PATTERN

_logger = logging.getLogger(__name__)

# Seconds to wait for the staging server (connect, then each read). A prod2x
# job is answered at once; a dropdb job only once its databases are dropped.
DEFAULT_TIMEOUT = 60
# How much of an unexpected answer is kept in the job's traceback.
MAX_DETAIL = 4000


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
        """Send each job to its staging environment (the Run button)."""
        for job in self:
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
        # Raises before anything is sent when the callback URL cannot be built.
        # What a previous run left (error, report) is cleared here, once.
        payload = self._get_webhook_data()
        url = self.environment_id._get_url("/web/staging/run")
        self.write(
            {
                "start_datetime": fields.Datetime.now(),
                "error": False,
                "traceback": False,
                "dropdb_report": False,
            }
        )
        try:
            response = requests.post(url, json=payload, timeout=self._get_timeout())
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
        return self._handle_response(response)

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
        result = data.get("result") or {}
        if self.type_ == "dropdb":
            return self._handle_dropdb_success(result)
        return self._handle_prod2x_running(result)

    def _handle_prod2x_running(self, result):
        self.write({"state": "running", "database_name": result.get("db_name") or False})

    def _handle_dropdb_success(self, result):
        self.write({"state": "done", "dropdb_report": self._format_dropdb_report(result)})

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
        }
        if self.type_ == "prod2x":
            data["level"] = environment.level
            data["suffix"] = self.suffix or None
        else:
            data["database_names"] = self.dropdb_database_names or ""
        if self.user_id.email:
            data["email"] = self.user_id.email
        return data

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

    # ------------------------------------------------------------- callback

    def run_callback(self, data):
        """Apply the staging's callback ``data`` (DESIGN.md "Callback") and
        e-mail the job's user."""
        self.ensure_one()
        self._check_callback_token(data)
        if self.state != "running":
            raise UserError(
                self.env._(
                    "The staging job %(job)s is not running (it is %(state)s): "
                    "callback ignored.",
                    job=self.id,
                    state=self.state,
                )
            )
        if data.get("state") == "done":
            self.write({"state": "done", "error": False, "traceback": False})
            self._send_message("numikube_staging.staging_job_done_template")
        else:
            self.write(
                {
                    "state": "error",
                    "error": data.get("error")
                    or self.env._("The staging server reported an error."),
                    # Older productions read "traceback", older stagings sent
                    # "stacktrace": accept either.
                    "traceback": data.get("traceback") or data.get("stacktrace") or False,
                }
            )
            self._send_message("numikube_staging.staging_job_failed_template")
        return True

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
