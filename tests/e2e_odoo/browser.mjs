// The browser walk of the end-to-end test: Debian's chromium, driven by
// playwright-core, through production's real Odoo 18.0 web client as a user of
// group Run Staging: Administration / Staging / Jobs -> New -> Run -> progress
// -> Done -> the environment -> its copies -> Open (the staging's login page in
// a new tab). Takes the addon's screenshots on the way (1280x800 PNG, into
// $SHOTS). Started by e2e.py with BROWSER=1 (see README.md), which passes:
//   PROD_URL, PROD_DB, STAGE_URL, RUNNER_LOGIN, RUNNER_PASSWORD, ENV_ID,
//   ERROR_JOB_ID (a job of that user in Error), ADMIN_LOGIN, ADMIN_PASSWORD
//   (the administrator, who ticks the environment's Anonymize and runs an
//   anonymized copy at the end), SHOTS, CHROMIUM.
// Prints 'browser: N passed, N failed' and exits non-zero on a failure.

import { copyFileSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const E = process.env;
const SHOTS = E.SHOTS;
const VIEWPORT = { width: 1280, height: 800 };
const JOB_ACTION = "action-numikube_staging.action_staging_job";
const RUN_TIMEOUT = 10 * 60 * 1000;

let passed = 0;
let failed = 0;
const say = (m) => console.log(`[browser] ${m}`);
function check(what, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  say(`${ok ? "ok  " : "FAIL"} ${what}${ok || !detail ? "" : " " + detail}`);
  return ok;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

mkdirSync(SHOTS, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "numikube-chromium."));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: E.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: VIEWPORT,
  locale: "en-US",
  timezoneId: "UTC",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
  ],
});
context.setDefaultTimeout(30000);
let page = context.pages()[0] || (await context.newPage());
page.on("pageerror", (err) => say(`page error: ${err.message}`));

async function shot(name, { quick = false, dir = SHOTS } = {}) {
  // Let the web client finish drawing (no pending RPC, no spinner), unless the
  // picture must be taken now (a running job moves on).
  if (!quick) {
    await page.waitForLoadState("networkidle", { timeout: 5000 }).catch(() => {});
    await page.locator(".o_loading_indicator").waitFor({ state: "hidden", timeout: 5000 }).catch(() => {});
    await sleep(400);
  }
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, animations: "disabled" });
  if (dir === SHOTS) say(`screenshot ${path}`);
  return path;
}

async function step(name, body) {
  try {
    await body();
  } catch (err) {
    check(`${name}`, false, String(err && err.message ? err.message : err).split("\n")[0]);
    const path = join(tmpdir(), `numikube-browser-failed-${name.replace(/\W+/g, "_")}.png`);
    await page.screenshot({ path }).catch(() => {});
    say(`the page at that moment: ${path}`);
  }
}

const statusOf = async () =>
  (await page.locator(".o_statusbar_status .o_arrow_button_current").first().innerText().catch(() => "")).trim();

async function progressOf() {
  const field = page.locator(".o_field_widget[name=progress]");
  if (!(await field.count()) || !(await field.first().isVisible())) return null;
  const bar = field.locator(".o_progress");
  if (await bar.count()) {
    const now = await bar.first().getAttribute("aria-valuenow");
    if (now !== null) return Number(now);
  }
  const text = (await field.first().innerText()).replace(/[^0-9.]/g, "");
  return text ? Number(text) : null;
}

let dbName = "";
let autoRefreshed = true;

// -- log in as the Run Staging user -----------------------------------------
await step("log in", async () => {
  await page.goto(`${E.PROD_URL}/web/login?db=${encodeURIComponent(E.PROD_DB)}`);
  await page.fill("input[name=login]", E.RUNNER_LOGIN);
  await page.fill("input[name=password]", E.RUNNER_PASSWORD);
  await page.click("button[type=submit]");
  await page.locator(".o_main_navbar").waitFor();
  check("the Run Staging user is logged in", true);
});

// -- Administration / Staging / Jobs through the menus ---------------------
await step("menus", async () => {
  await page.locator(".o_navbar_apps_menu button").click();
  await page.locator(".dropdown-item.o_app", { hasText: "Administration" }).click();
  await page.locator(".o_menu_sections button", { hasText: "Staging" }).click();
  await page.locator(".dropdown-item", { hasText: "Jobs" }).click();
  await page.locator(".o_list_view").waitFor();
  const crumb = (await page.locator(".o_breadcrumb").innerText()).trim();
  check("Administration / Staging / Jobs opens the job list", /Jobs/.test(crumb), crumb);
});
if (!(await page.locator(".o_list_view").count())) {
  await page.goto(`${E.PROD_URL}/odoo/${JOB_ACTION}`);
  await page.locator(".o_list_view").waitFor();
}

// -- New job, Run, progress, Done -----------------------------------------
await step("new job and Run", async () => {
  await page.locator(".o_list_button_add").click();
  await page.locator(".o_form_view").waitFor();
  const environment = page.locator(".o_field_widget[name=environment_id] input");
  if (!(await environment.inputValue()).includes("Lab")) {
    await environment.fill("Lab");
    await page.locator(".o-autocomplete--dropdown-item", { hasText: /^Lab$/ }).first().click();
  }
  await page.locator(".o_field_widget[name=suffix] input").fill("demo-browser");
  await page.locator("button[name=run]").click();
  await page.waitForFunction(() => {
    const s = document.querySelector(".o_statusbar_status .o_arrow_button_current");
    return s && /Running|Done|Error/.test(s.textContent);
  }, null, { timeout: 60000 });
  dbName = (await page.locator(".o_field_widget[name=database_name]").innerText().catch(() => "")).trim();
  const status = await statusOf();
  check("Run shows Running and the future database name",
    status === "Running" && /^cosmos-lab_\d{8}_\d{4}_demo-browser$/.test(dbName), `${status} ${dbName}`);
});

await step("progress", async () => {
  // The form refreshes the job itself (refresh_status()) while it runs: no reload.
  const seen = [];
  const deadline = Date.now() + RUN_TIMEOUT;
  const started = Date.now();
  let shotTaken = false;
  let changed = Date.now();
  while (Date.now() < deadline && (await statusOf()) === "Running") {
    const value = await progressOf();
    if (value !== null && !seen.includes(value)) {
      seen.push(value);
      changed = Date.now();
    }
    if (Date.now() - changed > 60000) break; // the form does not refresh itself
    // The picture: a bar well on its way (else any progress, else, with no
    // progress field, the Running form), kept only if the job still ran after it.
    const good = value !== null && value >= 15 && value < 90;
    if (shotTaken !== "good" && (good || (!shotTaken && ((value !== null && value > 0 && value < 100)
        || (value === null && Date.now() - started > 5000))))) {
      const tmp = await shot("running-candidate", { quick: true, dir: tmpdir() });
      if ((await statusOf()) === "Running" && (await progressOf()) !== 100) {
        copyFileSync(tmp, join(SHOTS, "screenshot_job_running.png"));
        say(`screenshot ${join(SHOTS, "screenshot_job_running.png")} (progress ${value})`);
        shotTaken = good ? "good" : "some";
      }
    }
    await sleep(500);
  }
  if (!shotTaken) say("no screenshot of the running job: it was Done too soon");
  say(`progress seen in the form: ${seen.join(" -> ") || "none"}`);
  // The form asks every few seconds: two values or more show that it moves.
  check("the form shows a progress that moves without reloading the page",
    seen.length >= 2 && seen[seen.length - 1] > seen[0], seen.join(","));
  if ((await statusOf()) === "Running") {
    autoRefreshed = false;
    await page.reload();
  }
});

await step("done", async () => {
  const deadline = Date.now() + RUN_TIMEOUT;
  while (Date.now() < deadline && !/Done|Error/.test(await statusOf())) {
    await sleep(2000);
    if (!autoRefreshed) await page.reload();
  }
  const status = await statusOf();
  check("the job is Done", status === "Done", status);
  check("Done shows in the form without reloading", autoRefreshed);
  await shot("screenshot_job_done");
});

// -- the environment and its copies; Open ----------------------------------
await step("environment", async () => {
  const link = page.locator(".o_field_widget[name=environment_id] a.o_form_uri");
  if (await link.count()) {
    await link.first().click();
  } else {
    await page.goto(`${E.PROD_URL}/odoo/action-numikube_staging.action_staging_environment/${E.ENV_ID}`);
  }
  await page.locator(".o_form_view .o_field_widget[name=name]").waitFor();
  const copies = page.locator(".o_form_view .o_field_widget[name=database_ids]");
  await copies.waitFor({ timeout: 10000 }).catch(() => {});
  if (!check("the environment form has its copies (database_ids)", await copies.count() > 0)) {
    await shot("screenshot_environment");
    return;
  }
  // The form asks the staging for its copies when it opens; the new one is
  // there at once or after Refresh Databases.
  const rows = page.locator(".o_field_widget[name=database_ids] .o_data_row");
  const mine = rows.filter({ hasText: dbName });
  await mine.first().waitFor({ timeout: 15000 }).catch(async () => {
    await page.locator("button[name=action_refresh_databases]").click();
    await mine.first().waitFor({ timeout: 15000 }).catch(() => {});
  });
  const names = await rows.allInnerTexts();
  check("the environment lists the new copy with its size",
    names.some((t) => t.includes(dbName) && /\d+(\.\d+)?\s*[KMG]i?B|\d{4,}/.test(t)), names.join(" | "));
  await shot("screenshot_environment");
});

await step("open", async () => {
  const row = page.locator(".o_field_widget[name=database_ids] .o_data_row", { hasText: dbName });
  if (!check("the copy has an Open button", await row.locator("button[name=action_open]").count() > 0)) {
    return;
  }
  const [tab] = await Promise.all([
    context.waitForEvent("page", { timeout: 30000 }),
    row.locator("button[name=action_open]").click(),
  ]);
  await tab.waitForLoadState("load");
  const url = tab.url();
  check("Open shows the staging's /web/login?db=<copy> in a new tab",
    url === `${E.STAGE_URL}/web/login?db=${dbName}`, url);
  const login = await tab.locator("input[name=login]").count();
  check("the staging answers with its login page for that database", login === 1);
  await tab.screenshot({ path: join(tmpdir(), "numikube-browser-staging-login.png") });
  await tab.close();
});

// -- a job in Error, and the job list --------------------------------------
await step("error job", async () => {
  await page.goto(`${E.PROD_URL}/odoo/${JOB_ACTION}/${E.ERROR_JOB_ID}`);
  await page.locator(".o_form_view").waitFor();
  const status = await statusOf();
  check("a refused job shows Error and the staging's sentence", status === "Error", status);
  await shot("screenshot_job_error");
});

await step("job list", async () => {
  await page.goto(`${E.PROD_URL}/odoo/${JOB_ACTION}`);
  await page.locator(".o_list_view .o_data_row").first().waitFor();
  // Without the default "My Jobs" filter: a Run Staging user reads every job.
  const facets = page.locator(".o_searchview_facet .o_facet_remove");
  while (await facets.count()) {
    await facets.first().click();
    await sleep(300);
  }
  await page.waitForLoadState("networkidle", { timeout: 5000 }).catch(() => {});
  const rows = await page.locator(".o_list_view .o_data_row").count();
  check("the job list shows every job, the admin's too", rows >= 3, String(rows));
  await shot("screenshot_job_list");
});

// -- an anonymized copy, asked through the environment (as the admin) --------
// Only an administrator may change an environment: a second browser, logged in
// as ADMIN_LOGIN, ticks Anonymize, saves, runs a job and reads its report.
const adminProfile = mkdtempSync(join(tmpdir(), "numikube-chromium."));
const adminContext = await chromium.launchPersistentContext(adminProfile, {
  executablePath: E.CHROMIUM || "/usr/bin/chromium",
  headless: true, viewport: VIEWPORT, locale: "en-US", timezoneId: "UTC",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync"],
});
adminContext.setDefaultTimeout(30000);
const runnerPage = page;
page = adminContext.pages()[0] || (await adminContext.newPage());
page.on("pageerror", (err) => say(`page error: ${err.message}`));

await step("admin log in", async () => {
  await page.goto(`${E.PROD_URL}/web/login?db=${encodeURIComponent(E.PROD_DB)}`);
  await page.fill("input[name=login]", E.ADMIN_LOGIN);
  await page.fill("input[name=password]", E.ADMIN_PASSWORD);
  await page.click("button[type=submit]");
  await page.locator(".o_main_navbar").waitFor();
  check("the admin is logged in", true);
});

await step("anonymize checkbox", async () => {
  await page.goto(`${E.PROD_URL}/odoo/action-numikube_staging.action_staging_environment/${E.ENV_ID}`);
  await page.locator(".o_form_view .o_field_widget[name=name]").waitFor();
  const box = page.locator(".o_form_view .o_field_widget[name=anonymize] input[type=checkbox]");
  if (!check("the environment form shows the Anonymize checkbox", (await box.count()) === 1)) return;
  if (!(await box.isChecked())) await box.check();
  await page.locator(".o_form_button_save").click();
  await page.locator(".o_form_button_save").waitFor({ state: "hidden", timeout: 15000 }).catch(() => {});
  await page.reload();
  await page.locator(".o_form_view .o_field_widget[name=name]").waitFor();
  check("Anonymize is ticked and saved",
    await page.locator(".o_form_view .o_field_widget[name=anonymize] input[type=checkbox]").isChecked());
  await shot("screenshot_environment_anonymize");
});

let anonDb = "";
await step("anonymized job", async () => {
  await page.goto(`${E.PROD_URL}/odoo/${JOB_ACTION}/new`);
  await page.locator(".o_form_view").waitFor();
  const environment = page.locator(".o_field_widget[name=environment_id] input");
  if (!(await environment.inputValue()).includes("Lab")) {
    await environment.fill("Lab");
    await page.locator(".o-autocomplete--dropdown-item", { hasText: /^Lab$/ }).first().click();
  }
  await page.locator(".o_field_widget[name=suffix] input").fill("demo-anon");
  // The environment's onchange answers after the choice: wait for it.
  const asked = page.locator(".o_form_view .o_field_widget[name=anonymize] input[type=checkbox]");
  let ticked = false;
  for (let i = 0; i < 20 && !ticked; i++) {
    ticked = (await asked.count()) === 1 && (await asked.isChecked());
    if (!ticked) await sleep(500);
  }
  check("the new job is anonymized, as its environment says", ticked,
    `environment ${await environment.inputValue()}, anonymize ${await asked.count()} checkbox(es)`);
  await page.locator("button[name=run]").click();
  await page.waitForFunction(() => {
    const s = document.querySelector(".o_statusbar_status .o_arrow_button_current");
    return s && /Running|Done|Error/.test(s.textContent);
  }, null, { timeout: 60000 });
  anonDb = (await page.locator(".o_field_widget[name=database_name]").innerText().catch(() => "")).trim();
  const deadline = Date.now() + RUN_TIMEOUT;
  let polls = 0;
  while (Date.now() < deadline && !/Done|Error/.test(await statusOf())) {
    await sleep(2000);
    if (++polls % 15 === 0) await page.reload(); // the form refreshes itself; in case it did not
  }
  const status = await statusOf();
  check(`the anonymized job ${anonDb} is Done`, status === "Done", status);
  const files = (await page.locator(".o_field_widget[name=filestore]").innerText().catch(() => "")).trim();
  check("the job form says where the copy's files came from", files.length > 0, files);
  const tab = page.locator(".o_notebook_headers .nav-link", { hasText: "Anonymization" });
  if (check("the job form has an Anonymization tab", (await tab.count()) === 1)) {
    await tab.click();
    const report = (await page.locator(".o_field_widget[name=anonymize_report]").innerText()).trim();
    check("which shows the staging's anonymization report",
      /values masked/.test(report) && /res_partner/.test(report), report);
  }
  say(`anonymized job: ${anonDb}, files from: ${files}`);
  await shot("screenshot_job_anonymized");
});

await step("untick anonymize", async () => {
  await page.goto(`${E.PROD_URL}/odoo/action-numikube_staging.action_staging_environment/${E.ENV_ID}`);
  const box = page.locator(".o_form_view .o_field_widget[name=anonymize] input[type=checkbox]");
  await box.waitFor();
  if (await box.isChecked()) {
    await box.uncheck();
    await page.locator(".o_form_button_save").click();
    await page.locator(".o_form_button_save").waitFor({ state: "hidden", timeout: 15000 }).catch(() => {});
  }
});

await adminContext.close();
rmSync(adminProfile, { recursive: true, force: true });
page = runnerPage;
await context.close();
rmSync(profile, { recursive: true, force: true });
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
