# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from functools import partial

import odoo
from odoo import SUPERUSER_ID, api, http
from odoo.exceptions import UserError
from odoo.http import request
from odoo.modules.registry import Registry
from odoo.service.model import retrying
from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__, default_lang="en_US")


class StagingCallback(http.Controller):
    """Production side: the staging's sidecar reports the end of a job."""

    @http.route(
        "/web/staging/callback/<int:job_id>",
        type="json",
        auth="none",
        csrf=False,
        methods=["POST"],
        readonly=False,
    )
    def staging_callback(self, job_id, **_kwargs):
        data = request.get_json_data()
        if request.db:
            return self._run_callback(request.env(user=SUPERUSER_ID), job_id, data)
        # No database chosen by the request (several databases on this
        # server): open the one the callback URL names, if it is ours.
        db = request.httprequest.args.get("db")
        host = request.httprequest.environ.get("HTTP_HOST")
        databases = http.db_filter(odoo.service.db.list_dbs(force=True), host=host)
        if not db or db not in databases:
            raise UserError(
                str(_lt("Unknown database %r: no staging job can be updated.", db))
            )
        with Registry(db).cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # As Odoo does for a request with a database: a serialization
            # failure (Cancel or the run's answer holding the job's row) is
            # retried, not answered as an error.
            return retrying(partial(self._run_callback, env, job_id, data), env)

    def _run_callback(self, env, job_id, data):
        if "staging.job" not in env:
            raise UserError(
                env._("The numikube_staging module is not installed in this database.")
            )
        # The token first: a wrong one is refused alike for every job id.
        job = env["staging.job"]._get_callback_job(job_id, data)
        return job.run_callback(data)
