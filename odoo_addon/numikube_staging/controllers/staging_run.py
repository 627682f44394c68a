# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).

from odoo import http
from odoo.http import request

from . import sidecar


class StagingRun(http.Controller):
    """Staging side: hand production's run payload to the sidecar.

    ``auth="none"`` and no use of the database: the module is loaded as a
    server-wide module, and the route must answer on a server with no
    database at all. The sidecar checks the token."""

    @http.route(
        "/web/staging/run", type="json", auth="none", csrf=False, methods=["POST"]
    )
    def staging_run(self, **_kwargs):
        # Odoo's JSON dispatcher has already refused a body that is not an
        # object; the payload goes to the sidecar as it came.
        return sidecar.call("staging_run", [request.get_json_data()])
