/** @odoo-module **/
/* Copyright 2024-today Numigi and all its contributors (https://bit.ly/numigiens)
 * License LGPL-3.0 or later (http://www.gnu.org/licenses/lgpl). */

import {onMounted, onWillUnmount} from "@odoo/owl";
import {FormController} from "@web/views/form/form_controller";
import {formView} from "@web/views/form/form_view";
import {registry} from "@web/core/registry";
import {useService} from "@web/core/utils/hooks";

/** Milliseconds between two questions to the staging about a running job. */
export const REFRESH_INTERVAL = 3000;

/**
 * Job form: while the job runs, ask the staging where it stands
 * (staging.job.refresh_status) every few seconds and show it, without
 * reloading the page. Stops once the job ends or the staging turns out to be
 * an older one that does not report progress.
 */
export class StagingJobFormController extends FormController {
    setup() {
        super.setup();
        this.orm = useService("orm");
        onMounted(() => this.scheduleRefresh());
        onWillUnmount(() => clearTimeout(this.refreshTimer));
    }

    scheduleRefresh() {
        clearTimeout(this.refreshTimer);
        this.refreshTimer = setTimeout(() => this.refreshStatus(), REFRESH_INTERVAL);
    }

    isFollowed(record) {
        const data = record.data;
        return (
            record.resId &&
            !record.dirty &&
            data.state === "running" &&
            data.type_ === "prod2x" &&
            !data.status_unsupported
        );
    }

    async refreshStatus() {
        const record = this.model.root;
        if (this.isFollowed(record)) {
            try {
                await this.orm.silent.call("staging.job", "refresh_status", [
                    [record.resId],
                ]);
                if (this.model.root === record && !record.dirty) {
                    await record.load();
                }
            } catch (error) {
                // The server refused (e.g. the session ended): the form stays
                // as it is, as without this controller.
                console.warn("staging job status not refreshed", error);
                return;
            }
        }
        this.scheduleRefresh();
    }
}

/** Environment form: the list of databases is asked for when the form opens. */
export class StagingEnvironmentFormController extends FormController {
    setup() {
        super.setup();
        this.orm = useService("orm");
        onMounted(() => this.refreshDatabases());
    }

    async refreshDatabases() {
        const record = this.model.root;
        if (!record.resId || record.dirty) {
            return;
        }
        await this.orm.silent.call("staging.environment", "action_refresh_databases", [
            [record.resId],
        ]);
        if (this.model.root === record && !record.dirty) {
            await record.load();
        }
    }
}

registry.category("views").add("staging_job_form", {
    ...formView,
    Controller: StagingJobFormController,
});
registry.category("views").add("staging_environment_form", {
    ...formView,
    Controller: StagingEnvironmentFormController,
});
