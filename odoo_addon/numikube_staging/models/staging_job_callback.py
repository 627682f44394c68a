# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""The staging's callback (docs/contract.md "Wire protocol", Callback): the end of a
job, its report, and the mail to the user."""

import hmac
import logging

from odoo import api, models
from odoo.exceptions import AccessError, UserError

_logger = logging.getLogger(__name__)


def token_matches(expected, given):
    """Whether ``given`` is the (non-empty) ``expected`` token, in constant time."""
    return bool(
        expected
        and isinstance(given, str)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


# staging.job in several files, one per concern (see staging_job.py).
class StagingJob(models.Model):
    _inherit = "staging.job"  # pylint: disable=consider-merging-classes-inherited,useless-suppression

    def run_callback(self, data):
        """Apply the staging's callback ``data`` (docs/contract.md "Callback") and
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
        values = {**self._report_values(data), **(values or {})}
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
        if not token_matches(self.environment_id.sudo().token, data.get("token")):
            raise AccessError(self.env._("Wrong given staging token"))

    @api.model
    def _get_callback_job(self, job_id, data):
        """The job ``job_id`` of a callback whose ``data`` carries its
        environment's token.

        The token is checked first: a wrong one gets the same refusal, after
        the same work (every environment's token compared), whether the job
        exists or not, so that the route does not tell which jobs exist."""
        given = data.get("token") if isinstance(data, dict) else None
        job = self.sudo().browse(job_id).exists()
        environments = (
            self.env["staging.environment"]
            .sudo()
            .with_context(active_test=False)
            .search([("token", "!=", False)])
        )
        matching = environments.filtered(lambda e: token_matches(e.token, given))
        if not (job.environment_id & matching if job else matching):
            raise AccessError(self.env._("Wrong given staging token"))
        if not job:
            raise UserError(self.env._("The staging job %s does not exist.", job_id))
        return job

    def _report_values(self, data):
        """What the staging reports of the copy (status and callback): where
        its files came from, and what it masked."""
        values = {}
        if isinstance(data.get("filestore"), str) and data["filestore"]:
            values["filestore"] = data["filestore"][:256]
        missing = data.get("missing_attachments")
        if isinstance(missing, int) and not isinstance(missing, bool):
            values["missing_attachments"] = max(0, missing)
        if isinstance(data.get("anonymized"), dict):
            values["anonymize_report"] = self._format_anonymize_report(data["anonymized"])
        return values

    def _format_anonymize_report(self, anonymized):
        """``{"scripts", "tables", "values"}`` as a sentence."""

        def names(key):
            items = anonymized.get(key)
            return ", ".join(map(str, items)) if isinstance(items, list) and items else ""

        count = anonymized.get("values")
        count = count if isinstance(count, int) and not isinstance(count, bool) else 0
        return self.env._(
            "%(count)s values masked in tables %(tables)s; module scripts: %(scripts)s.",
            count=count,
            tables=names("tables") or self.env._("none"),
            scripts=names("scripts") or self.env._("none"),
        )

    def _send_message(self, template_xmlid):
        template = self.env.ref(template_xmlid)
        # mail_notify_author: the user who ran the job may also be the author
        # of the message, and must get the e-mail all the same.
        self.with_context(mail_notify_author=True).message_post_with_source(
            template,
            subtype_xmlid="mail.mt_comment",
            partner_ids=self.user_id.partner_id.ids,
        )
