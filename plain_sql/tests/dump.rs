//! A real `pg_dump --format=plain` of a small database loads, streamed and in
//! parallel, into the same tables, rows, indexes, constraints, triggers and views.

mod common;

use common::*;

/// A source database with what an Odoo database has, and a partitioned table.
const SOURCE: &str = r#"
CREATE EXTENSION pg_trgm;
CREATE SCHEMA extra;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE res_partner (id serial PRIMARY KEY, name varchar NOT NULL, email text UNIQUE, mood mood, note text);
CREATE TABLE res_users (id serial PRIMARY KEY, login text NOT NULL, partner_id int NOT NULL REFERENCES res_partner(id),
    create_uid int REFERENCES res_users(id) ON DELETE SET NULL, CONSTRAINT res_users_login_key UNIQUE (login));
CREATE TABLE account_move_line (id bigserial PRIMARY KEY, partner_id int REFERENCES res_partner(id) ON DELETE CASCADE,
    create_uid int REFERENCES res_users(id), amount numeric(12, 2) CHECK (amount > -1e9), payload bytea,
    name text, ts timestamptz DEFAULT '2024-01-01');
CREATE INDEX aml_partner_idx ON account_move_line (partner_id);
CREATE INDEX aml_name_trgm ON account_move_line USING gin (name gin_trgm_ops);
CREATE UNIQUE INDEX res_partner_lower_email ON res_partner (lower(email)) WHERE email IS NOT NULL;
CREATE TABLE extra.events (id int, at date NOT NULL, label text) PARTITION BY RANGE (at);
CREATE TABLE extra.events_2023 PARTITION OF extra.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE extra.events_2024 PARTITION OF extra.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
ALTER TABLE extra.events ADD PRIMARY KEY (id, at);
CREATE INDEX events_label ON extra.events (label);
CREATE TABLE extra.event_notes (event_id int, event_at date, body text, FOREIGN KEY (event_id, event_at) REFERENCES extra.events);
CREATE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.note := coalesce(NEW.note, '') || ';';
    RETURN NEW;
END;
$$;
CREATE TRIGGER res_partner_bump BEFORE INSERT ON res_partner FOR EACH ROW EXECUTE FUNCTION bump();
CREATE VIEW partner_total AS SELECT p.id, sum(l.amount) AS total FROM res_partner p LEFT JOIN account_move_line l ON l.partner_id = p.id GROUP BY p.id;
CREATE MATERIALIZED VIEW partner_count AS SELECT count(*) AS n FROM res_partner;
CREATE INDEX partner_count_n ON partner_count (n);
COMMENT ON TABLE res_partner IS 'Partners; with a semicolon';
COMMENT ON CONSTRAINT res_users_partner_id_fkey ON res_users IS 'a comment on a foreign key';
INSERT INTO res_partner (name, email, mood) SELECT 'partner ' || i, 'p' || i || '@example.com', 'ok' FROM generate_series(1, 500) i;
INSERT INTO res_partner (name, email) VALUES ('back\slash', null), (E'tab\there\nnewline', 'TAB@x'), ('\N', 'n@x');
INSERT INTO res_users (login, partner_id) VALUES ('admin', 1);
INSERT INTO res_users (login, partner_id, create_uid) SELECT 'user' || i, i, 1 FROM generate_series(2, 50) i;
INSERT INTO account_move_line (partner_id, create_uid, amount, payload, name)
    SELECT 1 + i % 500, 1 + i % 50, i / 7.0, decode(md5(i::text), 'hex'), 'line ' || i FROM generate_series(1, 20000) i;
INSERT INTO extra.events SELECT i, date '2023-06-01' + i % 400, 'event ' || i FROM generate_series(1, 1000) i;
INSERT INTO extra.event_notes SELECT id, at, 'note' FROM extra.events WHERE id % 10 = 0;
REFRESH MATERIALIZED VIEW partner_count;
SELECT setval('res_partner_id_seq', 1000);
"#;

/// What must be the same after a restore, one line per item.
const CATALOG: &[&str] = &[
    "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes WHERE schemaname IN ('public', 'extra') ORDER BY 1, 2, 3;",
    "SELECT conrelid::regclass, conname, contype, convalidated, pg_get_constraintdef(oid) FROM pg_constraint \
     WHERE connamespace::regnamespace::text IN ('public', 'extra') ORDER BY conrelid::regclass::text, conname;",
    "SELECT tgrelid::regclass, tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgrelid::regclass::text, tgname;",
    "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1;",
    "SELECT last_value, is_called FROM res_partner_id_seq;",
    "SELECT obj_description('res_partner'::regclass), (SELECT description FROM pg_description d JOIN pg_constraint c ON d.objoid = c.oid WHERE c.conname = 'res_users_partner_id_fkey');",
    "SELECT n FROM partner_count;",
    "SELECT md5(string_agg(name || coalesce(email, '') || coalesce(note, ''), ',' ORDER BY id)) FROM res_partner;",
    "SELECT md5(string_agg(id || coalesce(amount::text, '') || encode(payload, 'hex') || name, ',' ORDER BY id)) FROM account_move_line;",
];

/// Row counts of every table.
fn row_counts(pg: &Postgres, db: &str) -> String {
    let tables = query(pg, db, "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('public', 'extra') ORDER BY 1;");
    let counts: Vec<String> = tables.lines().map(|t| format!("{t} {}", query(pg, db, &format!("SELECT count(*) FROM {t};")))).collect();
    counts.join("\n")
}

fn catalog(pg: &Postgres, db: &str) -> Vec<String> {
    CATALOG.iter().map(|q| query(pg, db, q)).collect()
}

#[tokio::test]
async fn a_real_pg_dump_loads_to_the_same_database() {
    let pg = cluster();
    create_db(&pg, "source", None);
    pg.psql("source", SOURCE).unwrap();
    let dump = pg_dump(&pg, "source", &[]);
    assert!(dump.starts_with(b"--\n-- PostgreSQL database dump") && String::from_utf8_lossy(&dump).contains("\\restrict "));
    let expected_rows = row_counts(&pg, "source");
    assert!(expected_rows.contains("public.account_move_line 20000"), "{expected_rows}");
    let expected = catalog(&pg, "source");
    for how in [How::Parallel(2), How::Stream, How::Parallel(1)] {
        let db = format!(
            "copy_{}",
            match how {
                How::Stream => "stream".into(),
                How::Parallel(n) => format!("j{n}"),
            }
        );
        let report = load_new(&pg, &db, &dump, how).await.unwrap_or_else(|e| panic!("{how:?}: {e}"));
        assert!(report.tolerated.is_empty(), "{report}");
        assert_eq!(row_counts(&pg, &db), expected_rows, "{how:?}");
        for (q, (got, want)) in CATALOG.iter().zip(catalog(&pg, &db).iter().zip(&expected)) {
            assert_eq!(got, want, "{how:?}: {q}");
        }
    }
}

#[tokio::test]
async fn an_inserts_dump_loads_statement_by_statement() {
    let pg = cluster();
    create_db(&pg, "source", None);
    pg.psql("source", SOURCE).unwrap();
    let dump = pg_dump(&pg, "source", &["--inserts", "--rows-per-insert=7"]);
    let report = load_new(&pg, "from_inserts", &dump, How::Parallel(2)).await.unwrap();
    assert_eq!(report.copy_blocks, 0);
    assert!(report.statements > 3000, "{report}");
    assert_eq!(row_counts(&pg, "from_inserts"), row_counts(&pg, "source"));
    assert_eq!(catalog(&pg, "from_inserts"), catalog(&pg, "source"));
}

#[tokio::test]
async fn a_no_owner_dump_loads_as_the_odoo_user() {
    // What Odoo's database manager makes: pg_dump --no-owner, restored by Odoo's role.
    let pg = cluster();
    pg.create_role("odoo", "pw", true).unwrap();
    create_db(&pg, "source", None);
    pg.psql("source", SOURCE).unwrap();
    pg.psql("source", "GRANT SELECT ON res_partner TO odoo;").unwrap();
    let dump = pg_dump(&pg, "source", &["--no-owner"]);
    create_db(&pg, "as_odoo", Some("odoo"));
    let report = load_as(&pg, "as_odoo", "odoo", &dump, How::Parallel(2)).await.unwrap();
    assert_eq!(row_counts(&pg, "as_odoo"), row_counts(&pg, "source"));
    assert_eq!(query(&pg, "as_odoo", "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public';"), "odoo");
    // pg_trgm came from the dump, created by odoo (trusted): its comment is odoo's to set.
    assert!(report.tolerated.is_empty(), "{report}");
}
