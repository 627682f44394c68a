# Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
# License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl).
"""The form controllers of static/src/js/staging_form.js, in a real browser:
the job form follows a running job without reloading the page, and the
environment form lists its databases when it opens."""

import importlib.util
import json
import unittest

from odoo.tests import HttpCase, tagged

from .common import LoopbackServer, StagingMixin, envelope

STATUS = "/web/staging/status"
LIST = "/web/staging/list"

# Waits until the text of the first element matching `selector` contains
# `expected`, then logs success; fails with what it saw after 40 s. Runs in
# one page load: a reload would end it, so success means none happened.
WAIT_FOR_TEXT = """
(async () => {
    const selector = %(selector)s, expected = %(expected)s;
    const seen = [];
    const until = Date.now() + 40000;
    while (Date.now() < until) {
        const element = document.querySelector(selector);
        const text = element ? element.textContent.replace(/\\s+/g, " ").trim() : "";
        if (seen[seen.length - 1] !== text) {
            seen.push(text);
        }
        if (text.includes(expected)) {
            console.log("seen: " + seen.join(" | "));
            console.log("test successful");
            return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
    }
    console.error("never saw " + expected + " in " + selector + "; saw: " + seen.join(" | "));
})();
"""


def wait_for_text(selector, expected):
    return WAIT_FOR_TEXT % {"selector": json.dumps(selector), "expected": json.dumps(expected)}


@tagged("post_install", "-at_install")
@unittest.skipUnless(
    importlib.util.find_spec("websocket"),
    "Odoo drives the browser with websocket-client, which is not installed",
)
class TestStagingForms(StagingMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.setup_staging()
        cls.user.password = "stage_runner"

    def test_job_form_follows_progress_without_reload(self):
        job = self.new_job(suffix="david-test")
        job.write(
            {
                "state": "running",
                "database_name": "cosmos-lab_x_david-test",
                "staging_job_id": "j1",
            }
        )
        progress = iter([0.25, 0.5, 0.75])

        def status(_body):
            value = next(progress, 0.75)
            return {
                "jsonrpc": "2.0",
                "id": None,
                "result": {
                    "job_id": "j1",
                    "state": "running",
                    "phase": "restoring",
                    "progress": value,
                },
            }

        with LoopbackServer({STATUS: status}) as staging:
            self.environment.url = staging.url
            self.browser_js(
                f"/odoo/action-numikube_staging.action_staging_job/{job.id}",
                wait_for_text(".o_field_progressbar", "75"),
                ready="!!document.querySelector('.o_form_view .o_field_progressbar')",
                login="stage_runner",
            )
            self.assertGreaterEqual(len(staging.received), 3)
        self.assertEqual(job.progress, 75)

    def test_environment_form_lists_databases_when_opened(self):
        copy = {
            "name": "cosmos-lab_20261124_1302_david-test",
            "size_bytes": 963 * 1024 * 1024,
            "made_by_staging": True,
            "created_at": "2026-11-24T13:02:41Z",
        }
        with LoopbackServer({LIST: envelope([copy])}) as staging:
            self.environment.url = staging.url
            self.browser_js(
                f"/odoo/action-numikube_staging.action_staging_environment/{self.environment.id}",
                wait_for_text(".o_field_one2many[name=database_ids]", "963 MB"),
                ready="!!document.querySelector('.o_form_view')",
                login="admin",
            )
            self.assertIn(LIST, [request["path"] for request in staging.received])
        self.assertEqual(self.environment.database_ids.name, copy["name"])
