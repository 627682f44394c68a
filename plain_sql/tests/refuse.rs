//! Plain SQL is data, never commands: psql meta-commands are refused with their
//! line, nothing of them runs, and only pg_dump's `\restrict` pair is skipped.

mod common;

use common::*;
use numikube_plain_sql::LoadError;

/// A dump whose line 3 is `command`, between two tables.
fn with_command(command: &str) -> String {
    format!("SET client_min_messages = warning;\nCREATE TABLE before_cmd (a int);\n{command}\nCREATE TABLE after_cmd (a int);\n")
}

#[tokio::test]
async fn meta_commands_are_refused_with_their_line_and_never_run() {
    let pg = cluster();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("\\!", format!("\\! touch {}", marker(dir.path(), "bang"))),
        ("\\o", format!("\\o {}", marker(dir.path(), "out"))),
        ("\\copy", format!("\\copy before_cmd from program 'touch {}'", marker(dir.path(), "copy"))),
        ("\\connect", "\\connect postgres".to_owned()),
        ("\\c", "\\c postgres".to_owned()),
        ("\\i", format!("\\i {}", marker(dir.path(), "include"))),
        ("\\gexec", "\\gexec".to_owned()),
        ("\\setenv", "\\setenv PAGER x".to_owned()),
        ("\\zz", "  \\zz something".to_owned()),
        ("\\", "\\".to_owned()),
    ];
    for (n, (command, line)) in cases.iter().enumerate() {
        for how in BOTH {
            let db = format!("meta_{n}_{}", matches!(how, How::Stream));
            let err = load_new(&pg, &db, with_command(line).as_bytes(), how).await.unwrap_err();
            match &err {
                LoadError::MetaCommand { line: 3, command: c } => assert_eq!(c, command, "{line}"),
                other => panic!("{line:?} ({how:?}): {other:?}"),
            }
            let text = err.to_string();
            assert!(text.contains(&format!("`{command}` at line 3")), "{text}");
            assert!(text.contains("may not run commands"), "{text}");
            // Streaming ran what came before (a parallel load may have: it loads as
            // it spools); nothing of the command's line nor after it ran.
            if how == How::Stream {
                assert!(has_table(&pg, &db, "before_cmd"), "{line} {how:?}");
            }
            assert!(!has_table(&pg, &db, "after_cmd"), "{line} {how:?}");
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no command left a file behind");
}

#[tokio::test]
async fn commands_hidden_inside_statements_are_refused() {
    let pg = cluster();
    let dir = tempfile::tempdir().unwrap();
    let m = marker(dir.path(), "x");
    let cases = [
        // A line starting with a backslash while a statement is being read.
        (format!("CREATE TABLE t (\n\\! touch {m}\na int);\n"), 2),
        // A backslash after a statement on the same line, as psql would obey it.
        (format!("SELECT 1;\nSELECT 2; \\! touch {m}\nCREATE TABLE t (a int);\n"), 2),
        // At the end of the stream.
        (format!("CREATE TABLE t (a int);\nSELECT 1 \\! touch {m}\n"), 2),
        // Right after COPY data.
        (format!("CREATE TABLE t (a int);\nCOPY t (a) FROM stdin;\n1\n\\.\n\\! touch {m}\n"), 5),
    ];
    for (n, (sql, line)) in cases.iter().enumerate() {
        for how in BOTH {
            let db = format!("hidden_{n}_{}", matches!(how, How::Stream));
            match load_new(&pg, &db, sql.as_bytes(), how).await {
                Err(LoadError::MetaCommand { line: l, command }) => {
                    assert_eq!((l, command.as_str()), (*line, "\\!"), "{sql}")
                }
                other => panic!("{sql} ({how:?}): {other:?}"),
            }
        }
    }
    assert!(!std::path::Path::new(&m).exists());
}

#[tokio::test]
async fn backslashes_in_strings_comments_and_copy_data_are_data() {
    let pg = cluster();
    let sql = "CREATE TABLE t (a text);\n\
               INSERT INTO t VALUES ('line one\n\\! not a command\n');\n\
               INSERT INTO t VALUES ($x$\n\\o not a command either;\n$x$);\n\
               /* a comment\n\\! still a comment */\n\
               CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN E'\\\\';\nEND;\n$$;\n\
               COPY t (a) FROM stdin;\n\\\\! in data\n\\N\n\\.\n";
    for how in BOTH {
        let db = format!("data_{}", matches!(how, How::Stream));
        let report = load_new(&pg, &db, sql.as_bytes(), how).await.unwrap();
        assert_eq!(report.rows, 2);
        assert_eq!(query(&pg, &db, "SELECT count(*) FROM t WHERE strpos(a, '\\! ') > 0 OR strpos(a, '\\o ') > 0;"), "3");
        assert_eq!(query(&pg, &db, "SELECT count(*) FROM t WHERE a IS NULL;"), "1");
        assert_eq!(query(&pg, &db, "SELECT f();"), "\\");
    }
}

/// What a refusal must look like.
type Check = fn(&LoadError) -> bool;

#[tokio::test]
async fn the_restrict_pair_of_pg_dump_is_skipped_and_nothing_else() {
    let pg = cluster();
    let ok = "--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\nCREATE TABLE t (a int);\n\n--\n\\unrestrict AbC123\n\n";
    for how in BOTH {
        let db = format!("restrict_{}", matches!(how, How::Stream));
        load_new(&pg, &db, ok.as_bytes(), how).await.unwrap();
        assert!(has_table(&pg, &db, "t"));
    }
    // Each refused dump names the tables that must not exist after it: the refused
    // line and all after it never run. What came before it may have run (a parallel
    // load runs statements as it spools, as for meta-commands): the restore then
    // fails and the hidden database that holds them is dropped.
    let bad: [(&str, Check, &[&str]); 6] = [
        (
            "\\restrict k1\nCREATE TABLE t (a int);\n\\unrestrict k2\nCREATE TABLE u (a int);\n",
            |e| matches!(e, LoadError::Restrict { line: 3, .. }),
            &["u"],
        ),
        (
            "CREATE TABLE t (a int);\n\\restrict k1\nCREATE TABLE u (a int);\n\\unrestrict k1\n",
            |e| matches!(e, LoadError::Restrict { line: 2, .. }),
            &["u"],
        ),
        (
            "\\restrict k1\n\\restrict k1\nCREATE TABLE u (a int);\n\\unrestrict k1\n",
            |e| matches!(e, LoadError::Restrict { line: 2, .. }),
            &["u"],
        ),
        ("\\unrestrict k1\nCREATE TABLE u (a int);\n", |e| matches!(e, LoadError::Restrict { line: 1, .. }), &["u"]),
        (
            "\\restrict k1\nCREATE TABLE t (a int);\n\\unrestrict k1\nCREATE TABLE u (a int);\n",
            |e| matches!(e, LoadError::AfterUnrestrict { line: 4 }),
            &["u"],
        ),
        ("\\restrict k1\nCREATE TABLE t (a int);\n", |e| matches!(e, LoadError::MissingUnrestrict { line: 1 }), &[]),
    ];
    for (n, (sql, expected, never_ran)) in bad.iter().enumerate() {
        for how in BOTH {
            let db = format!("bad_{n}_{}", matches!(how, How::Stream));
            let err = load_new(&pg, &db, sql.as_bytes(), how).await.unwrap_err();
            assert!(expected(&err), "{sql} ({how:?}): {err:?}");
            for table in *never_ran {
                assert!(!has_table(&pg, &db, table), "{sql} ({how:?}): {table} ran");
            }
        }
    }
}

#[tokio::test]
async fn copy_from_a_program_or_a_server_file_is_refused() {
    let pg = cluster();
    let dir = tempfile::tempdir().unwrap();
    let m = marker(dir.path(), "p");
    for (n, copy) in
        [format!("COPY t FROM PROGRAM 'touch {m}'"), "COPY t FROM '/etc/hostname'".into(), format!("COPY t TO '{m}'")].iter().enumerate()
    {
        let sql = format!("CREATE TABLE t (a text);\n{copy};\n");
        let err = load_new(&pg, &format!("prog_{n}"), sql.as_bytes(), How::Stream).await.unwrap_err();
        assert!(matches!(err, LoadError::ServerSide { line: 2, .. }), "{err:?}");
    }
    assert!(!std::path::Path::new(&m).exists());
}
