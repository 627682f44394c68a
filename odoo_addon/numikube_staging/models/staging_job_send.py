# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""Run, second half: the run payload goes to the staging once the Run is
committed, and its answer is applied to the job."""

import logging
import traceback as tb

from odoo import api, models

from .staging_client import (
    CANCEL_PATH,
    MAX_DETAIL,
    QUICK_TIMEOUT,
    StagingClient,
    StagingError,
)

_logger = logging.getLogger(__name__)


# staging.job in several files, one per concern (see staging_job.py).
class StagingJob(models.Model):
    _inherit = "staging.job"  # pylint: disable=consider-merging-classes-inherited,useless-suppression

    def _send_after_commit(self, path, payload, timeout):
        """Post ``payload`` to ``path`` of the staging once this transaction is
        committed, and write the answer through a cursor of its own."""
        registry = self.env.registry
        uid, context = self.env.uid, dict(self.env.context)
        job_id, run_count = self.id, self.run_count

        def send():
            with registry.cursor() as cr:
                env = api.Environment(cr, uid, context)
                job = env["staging.job"].browse(job_id).sudo()
                job._send_run(path, payload, timeout, run_count)

        self.env.cr.postcommit.add(send)

    def _send_run(self, path, payload, timeout, run_count):
        # The row stays locked until the answer is written: a callback that
        # comes first (a copy from a kept template takes under a second)
        # waits for it, and then finds the job id it must match.
        self._lock()
        if not self.exists() or self.state != "running" or self.run_count != run_count:
            _logger.info("Staging job %s changed before it was sent: not sent", self.id)
            return
        try:
            result = StagingClient(self.environment_id, timeout).call(path, payload)
        except StagingError as err:
            return self._set_error(err.args[0], err.detail)
        try:
            self._handle_result(result if isinstance(result, dict) else {})
        except Exception:  # the job must not stay Running for ever
            _logger.exception("Staging job %s: the answer could not be applied", self.id)
            self.env.cr.rollback()
            self._lock()
            self._set_error(
                self.env._("The staging server's answer could not be applied."),
                tb.format_exc()[-MAX_DETAIL:],
            )

    def _handle_result(self, result):
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
        if self.anonymize and result.get("anonymize") is not True:
            # An older staging ignores the key and would hand out real data.
            self._set_error(
                self.env._(
                    "The staging server did not confirm that it anonymizes copies "
                    "(it may be an older version): the copy was not used. "
                    "Upgrade numikube-staging on the staging server."
                ),
                str(result)[:MAX_DETAIL],
            )
            self._cancel_quietly()
        elif self.backup_key and result.get("backup") != self.backup_key:
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

    def _cancel_quietly(self):
        """Ask the staging to stop a copy that must not be used, if it can."""
        if not self.staging_job_id:
            return
        try:
            StagingClient(self.environment_id, QUICK_TIMEOUT).call(
                CANCEL_PATH, {"job_id": self.staging_job_id}
            )
        except StagingError as err:
            _logger.info("Staging job %s: not cancelled on the staging: %s", self.id, err)

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
