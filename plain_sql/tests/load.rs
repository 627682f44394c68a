//! Statements and COPY data load as psql would load them; a failing statement fails
//! the load with its line, except the tolerated few; large tables are cut into chunks.

mod common;

use common::*;
use numikube_plain_sql::{LoadError, Mode};
use std::sync::atomic::Ordering::Relaxed;

#[tokio::test]
async fn copy_data_with_escapes_and_functions_with_semicolons_load() {
    let pg = cluster();
    let sql = "SET standard_conforming_strings = on;\n\
        CREATE TABLE t (id int, a text, b bytea);\n\
        CREATE FUNCTION f(x int) RETURNS int\n    LANGUAGE plpgsql\n    AS $_$\nDECLARE y int;\nBEGIN\n  y := x + 1;\n  RETURN y;\nEND;\n$_$;\n\
        CREATE FUNCTION g() RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n SELECT 1;\n SELECT 2;\nEND;\n\
        COPY t (id, a, b) FROM stdin;\n\
        1\t\\\\N\t\\\\x00ff\n\
        2\t\\N\t\\N\n\
        3\ttab\\there\\nnewline\t\\\\x5c\n\
        4\t\\\\.\t\\N\n\
        \\.\n";
    for how in BOTH {
        let db = format!("escapes_{}", how == How::Stream);
        let report = load_new(&pg, &db, sql.as_bytes(), how).await.unwrap();
        assert_eq!((report.rows, report.copy_blocks), (4, 1));
        let rows = query(&pg, &db, "SELECT id, coalesce(a, 'NULL'), encode(b, 'hex') FROM t ORDER BY id;");
        assert_eq!(rows, "1|\\N|00ff\n2|NULL|\n3|tab\there\nnewline|5c\n4|\\.|");
        assert_eq!(query(&pg, &db, "SELECT f(41), g();"), "42|2");
    }
}

#[tokio::test]
async fn a_failing_statement_fails_the_load_with_its_line() {
    let pg = cluster();
    let sql = "CREATE TABLE t (a int);\n\n-- comment\nINSERT INTO t\n  VALUES ('not a number');\nCREATE TABLE after_err (a int);\n";
    for how in BOTH {
        let db = format!("fails_{}", how == How::Stream);
        let err = load_new(&pg, &db, sql.as_bytes(), how).await.unwrap_err();
        match &err {
            LoadError::Statement { line: 4, head, message } => {
                assert_eq!(head, "INSERT INTO t VALUES ('not a number')");
                assert!(message.contains("invalid input syntax for type integer"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().starts_with("The backup's SQL statement at line 4 (`INSERT INTO t"), "{err}");
        assert!(!has_table(&pg, &db, "after_err"));
    }
    let bad_copy = "CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\nx\n\\.\n";
    for how in BOTH {
        let err = load_new(&pg, &format!("badcopy_{}", how == How::Stream), bad_copy.as_bytes(), how).await.unwrap_err();
        assert!(matches!(&err, LoadError::Copy { line: 2, message, .. } if message.contains("invalid input syntax")), "{err:?}");
    }
    let truncated = "CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\n";
    let err = load_new(&pg, "truncated", truncated.as_bytes(), How::Parallel(2)).await.unwrap_err();
    assert!(matches!(err, LoadError::Truncated { line: 2, .. }), "{err:?}");
}

#[tokio::test]
async fn harmless_failures_of_a_non_superuser_restore_are_tolerated_and_reported() {
    let pg = cluster();
    pg.create_role("odoo", "pw", true).unwrap();
    let sql = "SET transaction_timeout = 0;\n\
        CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;\n\
        COMMENT ON EXTENSION pg_trgm IS 'text similarity';\n\
        CREATE EXTENSION IF NOT EXISTS plpgsql WITH SCHEMA pg_catalog;\n\
        COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language';\n\
        CREATE TABLE public.t (a int);\n\
        ALTER TABLE public.t OWNER TO odoo_prod;\n\
        ALTER TABLE public.t OWNER TO postgres;\n\
        GRANT SELECT ON TABLE public.t TO odoo_readonly;\n\
        COPY public.t (a) FROM stdin;\n1\n\\.\n";
    for how in BOTH {
        let db = format!("tolerant_{}", how == How::Stream);
        create_db(&pg, &db, Some("odoo"));
        // The extension is there already, installed by a superuser (as in template1 of many hosts).
        pg.psql(&db, "CREATE EXTENSION pg_trgm;").unwrap();
        let report = load_as(&pg, &db, "odoo", sql.as_bytes(), how).await.unwrap();
        let lines: Vec<u64> = report.tolerated.iter().map(|t| t.line).collect();
        assert_eq!(lines, [1, 3, 5, 7, 8, 9], "{report}");
        assert!(report.tolerated[1].message.contains("must be owner of extension pg_trgm"), "{report}");
        assert!(report.tolerated[3].message.contains("odoo_prod"), "{report}");
        assert!(report.to_string().contains("6 failed harmlessly"), "{report}");
        assert_eq!(query(&pg, &db, "SELECT tableowner FROM pg_tables WHERE tablename = 't';"), "odoo");
        assert_eq!(report.rows, 1);
    }
    // The same kinds of statement failing for another reason still fail the load.
    let db = "intolerant";
    create_db(&pg, db, Some("odoo"));
    let err = load_as(&pg, db, "odoo", b"ALTER TABLE public.missing OWNER TO odoo;\n", How::Stream).await.unwrap_err();
    assert!(matches!(err, LoadError::Statement { line: 1, .. }), "{err:?}");
    let err = load_as(&pg, db, "odoo", b"COMMENT ON EXTENSION missing IS 'x';\n", How::Stream).await.unwrap_err();
    assert!(matches!(err, LoadError::Statement { line: 1, .. }), "{err:?}");
}

#[tokio::test]
async fn a_large_table_is_cut_into_chunks_loaded_side_by_side() {
    let pg = cluster();
    let mut sql = String::from("CREATE TABLE big (id int, label text);\nCOPY big (id, label) FROM stdin;\n");
    // About 20 MB: cut into chunks of 4 MiB as it streams in.
    for i in 0..500_000 {
        sql.push_str(&format!("{i}\trow number {i} \\\\ with a backslash\n"));
    }
    sql.push_str("\\.\nCREATE TABLE small (a int);\nCOPY small (a) FROM stdin;\n1\n\\.\nALTER TABLE ONLY big ADD CONSTRAINT big_pkey PRIMARY KEY (id);\n");
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for how in [How::Parallel(2), How::Stream] {
        let db = format!("big_{}", how == How::Stream);
        create_db(&pg, &db, None);
        let spool = tempfile::tempdir().unwrap();
        let mut opts = numikube_plain_sql::LoadOptions::new(target(&pg, &db, "postgres"));
        opts.progress = progress.clone();
        if let How::Parallel(jobs) = how {
            opts.jobs = jobs;
            opts.spool_dir = Some(spool.path().to_owned());
        }
        let before = progress.load(Relaxed);
        let report = numikube_plain_sql::load(sql.as_bytes(), &opts).await.unwrap();
        assert_eq!((report.rows, report.copy_blocks), (500_001, 2));
        assert!(progress.load(Relaxed) - before >= sql.len() as u64 - 200, "progress counts what was sent");
        assert_eq!(report.bytes, progress.load(Relaxed) - before);
        if how == How::Stream {
            assert_eq!((report.copy_chunks, report.mode), (2, Mode::Streamed));
        } else {
            assert!(report.copy_chunks >= 4, "{report}");
            assert_eq!(report.mode, Mode::Parallel { jobs: 2 });
        }
        let check = "SELECT count(*), count(DISTINCT id), sum(id), min(label) FROM big;";
        assert_eq!(query(&pg, &db, check), "500000|500000|124999750000|row number 0 \\ with a backslash");
    }
}

#[tokio::test]
async fn session_settings_follow_each_statement_onto_every_connection() {
    let pg = cluster();
    // Unqualified names resolved through search_path changes between COPY blocks and
    // between indexes: each connection must be in the session state of its statement.
    let mut sql = String::from("CREATE SCHEMA a;\nCREATE SCHEMA b;\nCREATE TABLE a.t (x int);\nCREATE TABLE b.t (x int);\n");
    for (schema, rows) in [("a", 1), ("b", 2), ("a", 3), ("b", 4)] {
        sql.push_str(&format!("SELECT pg_catalog.set_config('search_path', '{schema}', false);\nCOPY t (x) FROM stdin;\n"));
        for _ in 0..rows {
            sql.push_str(&format!("{rows}\n"));
        }
        sql.push_str("\\.\n");
    }
    sql.push_str("SET search_path = a;\nCREATE INDEX ta ON t (x);\nSET search_path = b;\nCREATE INDEX tb ON t (x);\n");
    sql.push_str("SET search_path = a;\nCOMMENT ON TABLE t IS 'in a';\n");
    for how in [How::Parallel(2), How::Parallel(3), How::Stream] {
        let db = format!(
            "session_{}",
            match how {
                How::Stream => 0,
                How::Parallel(n) => n,
            }
        );
        load_new(&pg, &db, sql.as_bytes(), how).await.unwrap();
        assert_eq!(query(&pg, &db, "SELECT count(*), sum(x) FROM a.t;"), "4|10", "{how:?}");
        assert_eq!(query(&pg, &db, "SELECT count(*), sum(x) FROM b.t;"), "6|20", "{how:?}");
        assert_eq!(query(&pg, &db, "SELECT schemaname, indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1;"), "a|ta\nb|tb");
        assert_eq!(query(&pg, &db, "SELECT obj_description('a.t'::regclass);"), "in a");
    }
}

#[test]
fn the_load_future_can_be_spawned() {
    fn assert_send<T: Send>(_: &T) {}
    let opts = numikube_plain_sql::LoadOptions::new(tokio_postgres::Config::new());
    let future = numikube_plain_sql::load(tokio::io::empty(), &opts);
    assert_send(&future);
}
