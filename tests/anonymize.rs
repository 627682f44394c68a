//! Anonymized copies end to end on real servers (docs/contract.md, *Anonymized
//! copies*): the people of an Odoo-shaped production are masked in the copy,
//! deterministically, by the built-in set and a custom module's
//! `data/anonymize.sql`; a survivor fails the job and leaves nothing;
//! `numikube_staging_anonymize = always` and `never`; the answer's echo.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{code_of, literal, Options, Stage};
use numikube_staging_rpc::{codes, JobState, RunPayload};
use numikube_testbed::fixture;

/// A customer planted in production with every masked field, and what of
/// hers is searched for in the copy.
const ZEBULON: &str = "zebulon.quartermaine@customer.test";

/// Production's people: a customer with every masked field, a second one
/// sharing her e-mail (in other letter case), her portal user, bank account,
/// chatter, mail, tracking, lead, an employee's private data, and the custom
/// module `x_loyalty` (installed, with its table) whose script masks its cards.
const PEOPLE: &str = r#"
ALTER TABLE res_partner ADD COLUMN company_registry varchar;
INSERT INTO res_partner (id, company_id, name, complete_name, type, email, phone, mobile, street, street2, zip, city,
                         vat, company_registry, website, comment, is_company, active, create_date, write_date) VALUES
  (900001, 1, 'Zebulon Quartermaine', 'Zebulon Quartermaine', 'contact', 'zebulon.quartermaine@customer.test',
   '+32 475 11 22 33', '0476 98 76 54', '17 Rue des Planteurs', 'Boite 4', '1050', 'Ixelles', 'BE0999888777',
   'RPM 0999.888.777', 'https://quartermaine.customer.test', '<p>Call Zebulon on +32 475 11 22 33</p>', false, true, now(), now()),
  (900002, 1, 'Philomena Quartermaine', 'Philomena Quartermaine', 'contact', 'ZEBULON.Quartermaine@customer.test',
   NULL, '', NULL, NULL, NULL, 'Ixelles', NULL, NULL, NULL, NULL, false, true, now(), now());
UPDATE res_users SET password = '$pbkdf2-sha512$portal-secret-hash' WHERE id = 4;
INSERT INTO res_users (id, company_id, partner_id, active, login, password, signature, share, notification_type, create_date, write_date)
  VALUES (5, 1, 900001, true, 'zebulon.quartermaine@customer.test', '$pbkdf2-sha512$zebulon-secret-hash',
          '{"en_US": "<p>Zebulon Q.</p>", "fr_BE": "<p>Zebulon Q.</p>"}', true, 'email', now(), now());
CREATE TABLE res_partner_bank (id serial PRIMARY KEY, partner_id integer NOT NULL, acc_number varchar NOT NULL,
                               sanitized_acc_number varchar, acc_holder_name varchar);
INSERT INTO res_partner_bank (partner_id, acc_number, sanitized_acc_number, acc_holder_name) VALUES
  (900001, 'BE71 0961 2345 6769', 'BE71096123456769', 'Zebulon Quartermaine'),
  (1, 'BE68 5390 0754 7034', 'BE68539007547034', 'Numikube Production SA');
UPDATE mail_message SET body = '<p>Zebulon Quartermaine (zebulon.quartermaine@customer.test, +32 475 11 22 33) asked for a quote.</p>',
       email_from = '"Zebulon Quartermaine" <zebulon.quartermaine@customer.test>', subject = 'Quote for Zebulon Quartermaine',
       record_name = 'Zebulon Quartermaine'
 WHERE id = 1;
CREATE TABLE mail_mail (id serial PRIMARY KEY, mail_message_id integer, body_html text, email_to text, email_cc varchar, state varchar);
INSERT INTO mail_mail (mail_message_id, body_html, email_to, email_cc, state) VALUES
  (1, '<p>Dear Zebulon Quartermaine, your card.</p>', 'zebulon.quartermaine@customer.test', '"Philo" <philomena.q@customer.test>', 'sent');
CREATE TABLE mail_tracking_value (id serial PRIMARY KEY, mail_message_id integer NOT NULL, old_value_char varchar,
                                  new_value_char varchar, old_value_text text, new_value_text text);
INSERT INTO mail_tracking_value (mail_message_id, old_value_char, new_value_char, old_value_text, new_value_text) VALUES
  (1, 'zebulon.old@customer.test', 'zebulon.quartermaine@customer.test', NULL, 'Lives at 17 Rue des Planteurs');
CREATE TABLE crm_lead (id serial PRIMARY KEY, name varchar, partner_id integer, contact_name varchar, partner_name varchar,
                       email_from varchar, phone varchar, street varchar, city varchar, zip varchar, description text);
INSERT INTO crm_lead (name, partner_id, contact_name, partner_name, email_from, phone, street, city, zip, description) VALUES
  ('Interest in desks', 900001, 'Zebulon Quartermaine', 'Quartermaine Holdings', 'zebulon.quartermaine@customer.test',
   '+32 475 11 22 33', '17 Rue des Planteurs', 'Ixelles', '1050', '<p>Met at the fair</p>');
CREATE TABLE hr_employee (id serial PRIMARY KEY, name varchar, user_id integer, private_email varchar, private_phone varchar,
                          private_street varchar, private_city varchar, ssnid varchar, passport_id varchar,
                          emergency_contact varchar, emergency_phone varchar, km_home_work integer, birthday date,
                          study_school varchar, additional_note text);
INSERT INTO hr_employee (name, user_id, private_email, private_phone, private_street, private_city, ssnid, passport_id,
                         emergency_contact, emergency_phone, km_home_work, birthday, study_school, additional_note) VALUES
  ('Mitchell Admin', 2, 'mitchell.private@home.test', '+32 499 55 44 33', '5 Private Lane', 'Uccle', '85.07.30-033.61',
   'EP123456', 'Marie Admin', '+32 499 00 11 22', 12, '1985-07-30', 'Lycée Émile Jacqmain', 'Allergic to peanuts');
CREATE TABLE x_loyalty_card (id serial PRIMARY KEY, partner_id integer, holder_name varchar, holder_email varchar,
                             notes text, points integer);
INSERT INTO x_loyalty_card (partner_id, holder_name, holder_email, notes, points) VALUES
  (900001, 'Zebulon Quartermaine', 'zebulon.quartermaine@customer.test', 'Gold since 2019', 120);
"#;

/// Production's values that no anonymized copy may hold anywhere.
const PLANTED: &[&str] = &[
    "Zebulon",
    "Quartermaine",
    "customer.test",
    "475 11 22 33",
    "0476 98 76 54",
    "Planteurs",
    "Boite 4",
    "Ixelles",
    "BE0999888777",
    "0999.888.777",
    "0961 2345 6769",
    "BE71096123456769",
    "mitchell.private@home.test",
    "499 55 44 33",
    "499 00 11 22",
    "Private Lane",
    "Uccle",
    "85.07.30-033.61",
    "EP123456",
    "Marie Admin",
    "1985-07-30",
    "Jacqmain",
    "Allergic to peanuts",
    "portal-secret-hash",
    "zebulon-secret-hash",
    "portal@example.com",
    "Gold since 2019",
];

/// Installs module `name` in production (after the fixture's modules).
fn install(name: &str) -> String {
    format!(
        "INSERT INTO ir_module_module (id, name, state, latest_version, shortdesc, author, license, application, demo,
                                       auto_install, sequence, create_date, write_date)
         SELECT max(id) + 1, {}, 'installed', '18.0.1.0', '{{\"en_US\": \"x\"}}', 'Numigi', 'LGPL-3', false, false, false, 100, now(), now()
           FROM ir_module_module;\n",
        literal(name)
    )
}

/// The tables counted in production and in its copy.
const EXTRA_TABLES: &[&str] = &["res_partner_bank", "mail_mail", "mail_tracking_value", "crm_lead", "hr_employee", "x_loyalty_card"];

/// `pg_dump --data-only` of `db`, as text.
fn data_dump(stage: &Stage, db: &str) -> String {
    let out = Command::new(stage.pg.bin_dir.join("pg_dump"))
        .args(["--data-only", "--dbname", &fixture::db_url(&stage.pg.url("postgres"), db)])
        .output()
        .expect("pg_dump runs");
    assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Row counts of the fixture's tables and the extra ones.
fn counts(stage: &Stage, db: &str) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = fixture::table_counts(&stage.pg.bin_dir, &stage.pg.url("postgres"), db)
        .unwrap()
        .into_iter()
        .map(|(t, n)| (t, n.to_string()))
        .filter(|(t, _)| t != "ir_config_parameter" && t != "ir_mail_server")
        .collect();
    for t in EXTRA_TABLES {
        all.push((t.to_string(), stage.query(db, &format!("SELECT count(*) FROM {t}"))));
    }
    all
}

/// Runs `payload` and waits for its job.
async fn run(stage: &Stage, payload: RunPayload) -> (numikube_staging_rpc::RunStarted, numikube_staging_rpc::JobStatus) {
    let started = stage.run(payload).await.expect("accepted");
    let status = stage.wait_job(&started.job_id).await;
    (started, status)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_anonymized_copy_holds_none_of_the_people() {
    let stage = Stage::start(Options::default());
    let prod = "prod_anon";
    // An index with a comment on a table whose indexes are set aside, and one on a
    // table rewritten whole; a column of its own collation; a view on mail_mail,
    // which then cannot be rewritten and is masked with an UPDATE.
    let index = "CREATE INDEX res_partner_lower_email_idx ON res_partner (lower(email));
                 COMMENT ON INDEX res_partner_lower_email_idx IS 'who wrote from this address';
                 CREATE INDEX mail_message_email_from_idx ON mail_message (email_from);
                 COMMENT ON INDEX mail_message_email_from_idx IS 'by sender';
                 ALTER TABLE mail_tracking_value ALTER COLUMN old_value_char TYPE varchar(80) COLLATE \"C\";
                 CREATE VIEW mail_mail_outgoing AS SELECT id, email_to FROM mail_mail WHERE state = 'sent';\n";
    stage.put_custom_dump(prod, "anon-2026-11-24.dump", &fixture::Spec::tiny(), &format!("{PEOPLE}{index}{}", install("x_loyalty")));
    let before = data_dump(&stage, prod);
    for value in PLANTED {
        assert!(before.contains(value), "the test plants {value} in production");
    }

    let asked = RunPayload { anonymize: Some(true), ..stage.prod2x("anon", "masked", false) };
    let (started, status) = run(&stage, asked).await;
    assert!(started.anonymize, "the answer echoes anonymize");
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", stage.sidecar_log());
    assert!(status.anonymize);
    let report = status.anonymized.clone().expect("the status says what was masked");
    assert_eq!(report.scripts, vec!["x_loyalty".to_string()], "{report:?}");
    for table in [
        "res_partner",
        "res_users",
        "res_partner_bank",
        "mail_message",
        "mail_mail",
        "mail_tracking_value",
        "crm_lead",
        "hr_employee",
        "x_loyalty_card",
    ] {
        assert!(report.tables.contains(&table.to_string()), "{table} masked: {report:?}");
    }
    assert!(report.values > 100, "{report:?}");
    let db = &started.db_name;

    // Nothing of the people, anywhere in the copy's data.
    let dump = data_dump(&stage, db);
    for value in PLANTED {
        assert!(!dump.contains(value), "{value} survived in the copy");
    }
    let customers = stage.query(prod, "SELECT string_agg(email || '|' || phone, '|') FROM res_partner WHERE id > 3 AND id < 900000");
    for value in customers.split('|').filter(|v| !v.is_empty()) {
        assert!(!dump.contains(value), "the fixture's customer value {value} survived");
    }

    // Every row stays; ids and relations too.
    assert_eq!(counts(&stage, db), counts(&stage, prod));
    assert_eq!(
        stage.query(db, "SELECT partner_id FROM res_partner_bank ORDER BY id"),
        stage.query(prod, "SELECT partner_id FROM res_partner_bank ORDER BY id")
    );
    // The indexes set aside while their tables were rewritten are built again, as they were.
    let indexes = "SELECT string_agg(indexdef || ' ' || coalesce(obj_description(to_regclass(indexname), 'pg_class'), '-'), E'\\n' ORDER BY indexname)
                     FROM pg_indexes WHERE schemaname = 'public'";
    assert_eq!(stage.query(db, indexes), stage.query(prod, indexes));
    assert!(stage.query(db, indexes).contains("(lower((email)::text)) who wrote from this address"), "{}", stage.query(db, indexes));
    assert!(stage.query(db, indexes).contains("(email_from) by sender"), "{}", stage.query(db, indexes));
    // Every column keeps its type, length and collation, whether its table was rewritten or updated.
    let columns =
        "SELECT string_agg(table_name || '.' || column_name || ' ' || data_type || coalesce('(' || character_maximum_length || ')', '')
                                     || coalesce(' ' || collation_name, ''), E'\\n' ORDER BY table_name, column_name)
                     FROM information_schema.columns WHERE table_schema = 'public'";
    assert_eq!(stage.query(db, columns), stage.query(prod, columns));
    assert!(stage.query(db, columns).contains("mail_tracking_value.old_value_char character varying(80) C"));
    // mail_message was rewritten once, not updated: its heap holds the masked rows
    // alone (the masked bodies are shorter), not a second version of each row.
    let heap = "SELECT pg_relation_size('mail_message')";
    let (copy, production): (u64, u64) = (stage.query(db, heap).parse().unwrap(), stage.query(prod, heap).parse().unwrap());
    assert!(copy < production, "mail_message: {copy} bytes in the copy, {production} in production");
    // NULLs stay NULL, empty strings empty.
    assert_eq!(stage.query(db, "SELECT phone IS NULL, mobile, street IS NULL FROM res_partner WHERE id = 900002"), "t||t");

    // Internal users, the company and its bank account are as they were.
    let internal = "SELECT string_agg(login || ':' || coalesce(password, '-'), ',' ORDER BY id) FROM res_users WHERE NOT share";
    assert_eq!(stage.query(db, internal), stage.query(prod, internal));
    let kept = "SELECT string_agg(name || email, ',' ORDER BY id) FROM res_partner WHERE id IN (1, 2)";
    assert_eq!(stage.query(db, kept), stage.query(prod, kept));
    assert_eq!(stage.query(db, "SELECT acc_number FROM res_partner_bank WHERE partner_id = 1"), "BE68 5390 0754 7034");

    // Deterministic: one e-mail, one mask, wherever it appears; shapes kept.
    let masked = stage.query(db, "SELECT email FROM res_partner WHERE id = 900001");
    assert!(masked.ends_with("@example.com") && masked.len() > "@example.com".len() + 11, "{masked}");
    assert_eq!(stage.query(db, "SELECT email FROM res_partner WHERE id = 900002"), masked, "a shared e-mail stays shared");
    assert_eq!(stage.query(db, "SELECT login FROM res_users WHERE id = 5"), masked, "the portal login is the masked e-mail");
    assert_eq!(stage.query(db, "SELECT email_from FROM crm_lead"), masked);
    assert_eq!(stage.query(db, "SELECT email_to FROM mail_mail_outgoing"), masked, "a view on a masked table reads the masks");
    assert_eq!(stage.query(db, "SELECT holder_email FROM x_loyalty_card"), masked, "the module's script masks alike");
    assert_eq!(
        stage.query(db, "SELECT holder_name FROM x_loyalty_card"),
        stage.query(db, "SELECT name FROM res_partner WHERE id = 900001")
    );
    assert_eq!(stage.query(db, "SELECT notes FROM x_loyalty_card"), "masked by x_loyalty");
    assert_eq!(stage.query(db, "SELECT password IS NULL FROM res_users WHERE id IN (4, 5) ORDER BY id"), "t\nt");
    let signature = stage.query(db, "SELECT signature->>'en_US', signature->>'fr_BE' FROM res_users WHERE id = 5");
    assert_eq!(signature, "<p>Masked text</p>|<p>Masked text</p>", "every language of a translated field");
    let phone = stage.query(db, "SELECT phone FROM res_partner WHERE id = 900001");
    assert!(phone.starts_with('+') && phone.len() == "+32475112233".len() && phone[1..].bytes().all(|b| b.is_ascii_digit()), "{phone}");
    let vat = stage.query(db, "SELECT vat FROM res_partner WHERE id = 900001");
    assert!(vat.starts_with("BE") && vat.len() == "BE0999888777".len(), "{vat}");
    // A repeated value's mask comes from a map (the partners' cities, 9 values
    // for 55 rows; the sidecar's debug log says so): the same as where it is
    // computed (the one lead's city).
    assert_eq!(stage.query(db, "SELECT city FROM res_partner WHERE id = 900001"), stage.query(db, "SELECT city FROM crm_lead"));
    let birthday = stage.query(db, "SELECT birthday FROM hr_employee");
    assert!(birthday.starts_with("1985-") && birthday != "1985-07-30", "another day of the same year: {birthday}");
    let logins = stage.query(db, "SELECT count(DISTINCT login) = count(*) FROM res_users");
    assert_eq!(logins, "t", "logins stay unique");

    // Production hears what was masked; no template was kept of the copy.
    let calls = stage.receiver.wait_for(1, Duration::from_secs(10)).unwrap();
    let body = &calls.last().unwrap().body;
    assert_eq!(body["state"], "done");
    assert_eq!(body["anonymized"]["scripts"], serde_json::json!(["x_loyalty"]));
    assert!(stage.databases().iter().all(|d| !d.starts_with("numikube_tpl_")), "{:?}", stage.databases());

    // The same backup without anonymization: real data, the answer says so.
    let (plain, status) = run(&stage, stage.prod2x("anon", "plain", false)).await;
    assert!(!plain.anonymize);
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert!(!status.anonymize && status.anonymized.is_none());
    assert_eq!(stage.query(&plain.db_name, "SELECT email FROM res_partner WHERE id = 900001"), ZEBULON);
    // A template of it is kept now, and never serves an anonymized copy.
    assert!(stage.databases().iter().any(|d| d.starts_with("numikube_tpl_")), "{:?}", stage.databases());
    let (again, status) = run(&stage, RunPayload { anonymize: Some(true), ..stage.prod2x("anon", "again", false) }).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let remasked = stage.query(&again.db_name, "SELECT email FROM res_partner WHERE id = 900001");
    assert_ne!(remasked, ZEBULON);
    assert_ne!(remasked, masked, "without numikube_staging_anonymize_key, a key per copy");
}

/// The kept templates, `(name, fingerprint of their masking or "")`, by name.
fn templates(stage: &Stage) -> Vec<(String, String)> {
    let rows = stage.query(
        "postgres",
        "SELECT datname || '|' || coalesce(shobj_description(oid, 'pg_database')::json #>> '{masking,fingerprint}', '')
           FROM pg_database WHERE datname LIKE 'numikube\\_tpl\\_%' ORDER BY datname",
    );
    rows.lines().map(|l| l.split_once('|').map(|(n, f)| (n.to_string(), f.to_string())).unwrap()).collect()
}

/// How many copies came from a template so far.
fn cloned(stage: &Stage) -> usize {
    stage.sidecar_log().matches("copying the template").count()
}

/// The masked people of `db`, to compare two copies.
fn people(stage: &Stage, db: &str) -> String {
    stage.query(db, "SELECT string_agg(concat_ws('|', name, email, phone, street, vat), E'\\n' ORDER BY id) FROM res_partner")
}

/// Waits until `db`'s client has `n` templates.
async fn until_templates(stage: &Stage, n: usize) -> Vec<(String, String)> {
    for _ in 0..300 {
        let t = templates(stage);
        if t.len() == n {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} templates expected, found {:?}\n{}", templates(stage), stage.sidecar_log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeat_anonymized_copy_comes_from_a_template_masked_alike() {
    let mut stage = Stage::start(Options { extra_conf: "numikube_staging_anonymize_key = first-key\n".into(), ..Options::default() });
    stage.put_custom_dump("prod_anon", "anon-2026-11-24.dump", &fixture::Spec::tiny(), &format!("{PEOPLE}{}", install("x_loyalty")));
    let masked = |stage: &Stage, suffix: &str| RunPayload { anonymize: Some(true), ..stage.prod2x("anon", suffix, false) };

    // The first anonymized copy is a full restore; a template of it is kept, marked with its masking.
    let (first, status) = run(&stage, masked(&stage, "one")).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", stage.sidecar_log());
    let report = status.anonymized.clone().expect("masked");
    let kept = until_templates(&stage, 1).await;
    assert!(!kept[0].1.is_empty(), "the template carries its masking's fingerprint: {kept:?}");
    assert_eq!(cloned(&stage), 0);

    // The repeat anonymized copy is made from it: masked alike, the same report, a new identity.
    let (second, status) = run(&stage, masked(&stage, "two")).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!(cloned(&stage), 1, "the repeat anonymized copy came from the masked template");
    assert!(status.anonymize);
    assert_eq!(status.anonymized.as_ref(), Some(&report), "the template's report");
    assert_eq!(people(&stage, &second.db_name), people(&stage, &first.db_name));
    let dump = data_dump(&stage, &second.db_name);
    for value in PLANTED {
        assert!(!dump.contains(value), "{value} in a copy made from the masked template");
    }
    let uuid = "SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'";
    assert_ne!(stage.query(&second.db_name, uuid), stage.query(&first.db_name, uuid));
    let calls = stage.receiver.wait_for(2, Duration::from_secs(10)).unwrap();
    assert_eq!(calls.last().unwrap().body["anonymized"]["scripts"], serde_json::json!(["x_loyalty"]));

    // A copy not asked to be anonymized never comes from it: a full restore,
    // real data, and a template as restored kept beside the masked one.
    let (plain, status) = run(&stage, stage.prod2x("anon", "plain", false)).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!(cloned(&stage), 1, "the plain copy was restored, not cloned from the masked template");
    assert!(status.anonymized.is_none());
    assert_eq!(stage.query(&plain.db_name, "SELECT email FROM res_partner WHERE id = 900001"), ZEBULON);
    let both = until_templates(&stage, 2).await;
    assert!(both.contains(&kept[0]), "the masked template stays beside the plain one: {both:?}");
    // Each serves its own kind.
    let (third, _) = run(&stage, masked(&stage, "three")).await;
    let (again, _) = run(&stage, stage.prod2x("anon", "plain-again", false)).await;
    assert_eq!(cloned(&stage), 3);
    assert_eq!(people(&stage, &third.db_name), people(&stage, &first.db_name));
    assert_eq!(stage.query(&again.db_name, "SELECT email FROM res_partner WHERE id = 900001"), ZEBULON);

    // Another key: the masked template serves nobody; a full restore masks
    // anew, and its template replaces the old masked one.
    let conf = std::fs::read_to_string(stage.conf()).unwrap().replace("first-key", "second-key");
    std::fs::write(stage.conf(), conf).unwrap();
    stage.kill_sidecar();
    stage.start_sidecar();
    let before = cloned(&stage);
    let (fourth, status) = run(&stage, masked(&stage, "four")).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!(cloned(&stage), before, "a new key: no template of the old one");
    assert_ne!(people(&stage, &fourth.db_name), people(&stage, &first.db_name));
    for _ in 0..300 {
        if !templates(&stage).contains(&kept[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let now = until_templates(&stage, 2).await;
    assert!(!now.contains(&kept[0]) && now.iter().filter(|(_, f)| !f.is_empty()).count() == 1, "{now:?}");

    // No key any more: the sweep drops the masked template, the plain one stays.
    let conf = std::fs::read_to_string(stage.conf()).unwrap().replace("numikube_staging_anonymize_key = second-key", "");
    std::fs::write(stage.conf(), conf).unwrap();
    stage.kill_sidecar();
    stage.start_sidecar();
    let left = until_templates(&stage, 1).await;
    assert!(left[0].1.is_empty(), "the template as restored stays: {left:?}");
    let (fifth, status) = run(&stage, masked(&stage, "five")).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!(cloned(&stage), 0, "without a key, a full restore");
    assert_ne!(stage.query(&fifth.db_name, "SELECT email FROM res_partner WHERE id = 900001"), ZEBULON);
    assert_eq!(templates(&stage), left, "and nothing kept of it");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_survivor_fails_the_job_and_leaves_nothing() {
    let stage = Stage::start(Options::default());
    // An e-mail where the built-in set does not look, in a table it masks.
    // And a phone in the notes of the company's own partner, which is kept as it is.
    let planted = format!(
        "{PEOPLE}UPDATE res_partner SET ref = 'see {ZEBULON}' WHERE id = 5;
         UPDATE res_partner SET comment = '<p>Zebulon: +32 475 11 22 33</p>' WHERE id = 1;\n"
    );
    stage.put_custom_dump("prod_leak", "leak-2026-11-24.dump", &fixture::Spec::tiny(), &planted);
    let before = stage.databases();
    let (started, status) = run(&stage, RunPayload { anonymize: Some(true), ..stage.prod2x("leak", "x", false) }).await;
    assert_eq!(status.state, JobState::Error, "{status:?}");
    let error = status.error.unwrap_or_default();
    assert!(error.contains("res_partner.ref (1 value)") && error.contains("res_partner.comment (1 value)"), "{error}");
    assert!(!stage.databases().contains(&started.db_name));
    stage.wait_no_leftovers(Duration::from_secs(10));
    assert_eq!(stage.databases(), before);

    // A module whose script forgets a column.
    let leaky = format!(
        "{PEOPLE}{}CREATE TABLE x_leaky_note (id serial PRIMARY KEY, title varchar, body text);
         INSERT INTO x_leaky_note (title, body) VALUES ('About Zebulon', 'Call her on +32 475 11 22 33');\n",
        install("x_leaky")
    );
    stage.put_custom_dump("prod_leaky", "leaky-2026-11-24.dump", &fixture::Spec::tiny(), &leaky);
    let (started, status) = run(&stage, RunPayload { anonymize: Some(true), ..stage.prod2x("leaky", "x", false) }).await;
    assert_eq!(status.state, JobState::Error, "{status:?}");
    let error = status.error.unwrap_or_default();
    assert!(error.contains("x_leaky_note.body (1 value)"), "{error}");
    assert!(!stage.databases().contains(&started.db_name));
    stage.wait_no_leftovers(Duration::from_secs(10));

    // A trigger of the backup's on a masked table could put the real values back: refused.
    let trigger = format!(
        "{PEOPLE}CREATE FUNCTION keep_email() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.email := OLD.email; RETURN NEW; END$$;
         CREATE TRIGGER keep_email BEFORE UPDATE ON res_partner FOR EACH ROW EXECUTE FUNCTION keep_email();\n"
    );
    stage.put_custom_dump("prod_trig", "trig-2026-11-24.dump", &fixture::Spec::tiny(), &trigger);
    let (started, status) = run(&stage, RunPayload { anonymize: Some(true), ..stage.prod2x("trig", "x", false) }).await;
    assert_eq!(status.state, JobState::Error, "{status:?}");
    let error = status.error.unwrap_or_default();
    assert!(error.contains("trigger keep_email on res_partner"), "{error}");
    assert!(!stage.databases().contains(&started.db_name));
    stage.wait_no_leftovers(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_staging_may_always_or_never_anonymize() {
    let mut stage = Stage::start(Options { extra_conf: "numikube_staging_anonymize = always\n".into(), ..Options::default() });
    stage.put_backup("lima", "lima-2026-11-24.dump", "dump");
    let (started, status) = run(&stage, stage.prod2x("lima", "a", false)).await;
    assert!(started.anonymize, "always: anonymized without being asked");
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert!(status.anonymize && status.anonymized.is_some());
    let customer = "SELECT email FROM res_partner WHERE id = 5";
    assert_ne!(stage.query(&started.db_name, customer), stage.query("prod_lima", customer));

    let conf =
        std::fs::read_to_string(stage.conf()).unwrap().replace("numikube_staging_anonymize = always", "numikube_staging_anonymize = never");
    std::fs::write(stage.conf(), conf).unwrap();
    stage.kill_sidecar();
    stage.start_sidecar();
    let before = stage.databases();
    let calls = stage.receiver.received().len();
    let refused = stage.run(RunPayload { anonymize: Some(true), ..stage.prod2x("lima", "b", false) }).await.unwrap_err();
    let (code, message) = code_of(refused);
    assert_eq!(code, codes::INVALID_INPUT);
    assert!(message.contains("does not make anonymized copies (numikube_staging_anonymize = never)"), "{message}");
    assert_eq!(stage.databases(), before, "nothing is made");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stage.receiver.received().len(), calls, "nobody is called");
    let plain = stage.run(RunPayload { anonymize: Some(false), ..stage.prod2x("lima", "c", false) }).await.unwrap();
    assert!(!plain.anonymize);
}

/// The time anonymizing adds to a first copy of a larger production
/// (`cargo test --test anonymize -- --ignored`; `NUMIKUBE_ANON_BENCH_BYTES`
/// sets its size, default 200 MB): a plain copy, then an anonymized one,
/// both full restores (no template), timed to the moment they are done.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn anonymizing_adds_little_to_a_copy() {
    let bytes: u64 = std::env::var("NUMIKUBE_ANON_BENCH_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(200 << 20);
    let stage = Stage::start(Options { extra_conf: "numikube_staging_template_cache = False\n".into(), ..Options::default() });
    let spec = fixture::Spec { filestore_files: 20, ..fixture::Spec::bench(bytes) };
    stage.put_custom_dump("prod_bench", "bench-2026-11-24.dump", &spec, &format!("{PEOPLE}{}", install("x_loyalty")));
    let mut took = Vec::new();
    for (suffix, anonymize) in [("plain", false), ("masked", true)] {
        let started_at = std::time::Instant::now();
        let job = stage.run(RunPayload { anonymize: Some(anonymize), ..stage.prod2x("bench", suffix, false) }).await.unwrap().job_id;
        let status = loop {
            let status = numikube_staging_rpc::StagingApiClient::status(&stage.client, common::TOKEN.into(), job.clone()).await.unwrap();
            if status.state != JobState::Running {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(status.state, JobState::Done, "{status:?}");
        took.push(started_at.elapsed());
    }
    let log = stage.sidecar_log();
    let masking: Vec<&str> = log.lines().filter(|l| l.contains("took")).collect();
    let partners = stage.query("prod_bench", "SELECT count(*) FROM res_partner");
    let messages = stage.query("prod_bench", "SELECT count(*) FROM mail_message");
    println!(
        "{} MB, {partners} partners, {messages} messages: plain copy {:.1?}, anonymized copy {:.1?} ({:.2}x)\n{}",
        bytes >> 20,
        took[0],
        took[1],
        took[1].as_secs_f64() / took[0].as_secs_f64(),
        masking.join("\n")
    );
}
