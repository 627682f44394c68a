# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""A running job as the staging sees it: its progress (``/web/staging/status``)
and Cancel (``/web/staging/cancel``)."""

import logging

from odoo import SUPERUSER_ID, models
from odoo.exceptions import UserError

from .staging_client import (
    CANCEL_PATH,
    QUICK_TIMEOUT,
    STATUS_PATH,
    StagingClient,
    StagingError,
    StagingRouteMissing,
)
from .staging_job import PHASES

_logger = logging.getLogger(__name__)


# staging.job in several files, one per concern (see staging_job.py).
class StagingJob(models.Model):
    _inherit = "staging.job"  # pylint: disable=consider-merging-classes-inherited,useless-suppression

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
            client = StagingClient(
                job.environment_id, min(job._get_timeout(), QUICK_TIMEOUT)
            )
            try:
                result = client.call(STATUS_PATH, {"job_id": job.staging_job_id})
            except StagingRouteMissing:
                job.status_unsupported = True
                continue
            except StagingError as err:
                _logger.info("Staging job %s: no status: %s", job.id, err)
                continue
            job._apply_status(result if isinstance(result, dict) else {})
        return True

    def _apply_status(self, result):
        if result.get("job_id") and str(result["job_id"]) != self.staging_job_id:
            return
        values = self._report_values(result)
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
                StagingClient(job.environment_id).call(
                    CANCEL_PATH, {"job_id": job.staging_job_id}
                )
            # The user may cancel the job (checked above); the state is the
            # system's.
            job.sudo().write(
                {
                    "state": "error",
                    "error": self.env._("Cancelled by %s", self.env.user.name),
                    "traceback": False,
                    "phase": False,
                }
            )
        return True
