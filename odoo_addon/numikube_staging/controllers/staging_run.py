# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from odoo import http
from odoo.exceptions import ValidationError
from odoo.http import request
from odoo.tools.translate import LazyTranslate

from . import sidecar

_lt = LazyTranslate(__name__, default_lang="en_US")


class StagingRun(http.Controller):
    """Staging side: hand production's run payload to the sidecar.

    ``auth="none"`` and no use of the database: the module is loaded as a
    server-wide module, and the route must answer on a server with no
    database at all. The sidecar checks the token."""

    @http.route(
        "/web/staging/run", type="json", auth="none", csrf=False, methods=["POST"]
    )
    def staging_run(self, **_kwargs):
        payload = request.get_json_data()
        if not isinstance(payload, dict):
            raise ValidationError(
                str(_lt("The body of /web/staging/run must be a JSON object."))
            )
        return sidecar.call("staging_run", [payload])
