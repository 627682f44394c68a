//! Unit tests of the scanner, fed line by line as `Pieces` would.

use super::*;

/// Feeds `input` one line at a time; the events, or the first error.
fn scan(input: &str) -> Result<Vec<String>, LoadError> {
    let mut scanner = Scanner::new();
    let mut events = Vec::new();
    let mut out = Vec::new();
    for line in input.split_inclusive('\n') {
        scanner.feed(line.as_bytes(), true, &mut events)?;
        for e in events.drain(..) {
            out.push(match e {
                Event::Stmt(s) => format!("{} {}@{}", s.line, s.text, s.offset),
                Event::CopyStart(s, data) => format!("{} COPY {}@{} data@{data}", s.line, s.text, s.offset),
                Event::CopyData { range, offset, line_start } => format!("data {}@{offset} {line_start}", range.len()),
                Event::CopyEnd { offset } => format!("end@{offset}"),
            });
        }
    }
    scanner.finish()?;
    Ok(out)
}

#[test]
fn statements_copy_blocks_and_their_places() {
    let got =
        scan("-- c\n\nSET a = 1; SET b = 2;\nCREATE TABLE t (\n  a int\n);\nCOPY t (a) FROM stdin;\n1\n\\N\n\\.\r\nSELECT 1;\n").unwrap();
    assert_eq!(
        got,
        [
            "3 SET a = 1@6",
            "3 SET b = 2@17",
            "4 CREATE TABLE t (\n  a int\n)@28",
            "7 COPY COPY t (a) FROM stdin@56 data@79",
            "data 2@79 true",
            "data 3@81 true",
            "end@84",
            "11 SELECT 1@88",
        ]
    );
}

#[test]
fn not_the_plain_format() {
    assert!(matches!(scan("COPY t FROM stdin; SELECT 1;\n"), Err(LoadError::Format { line: 1, .. })));
    assert!(matches!(scan("SELECT 1;\nSELECT 'a\0';\n"), Err(LoadError::Format { line: 2, .. })));
    assert!(matches!(scan("SELECT 1;\nCREATE TABLE t (\n"), Err(LoadError::Truncated { line: 2, what: "statement", .. })));
    assert!(matches!(scan("SELECT 'unterminated;\n"), Err(LoadError::Truncated { line: 1, .. })));
    assert!(matches!(scan("COPY t FROM stdin;\n1\n"), Err(LoadError::Truncated { line: 1, what: "COPY data", .. })));
    let mut scanner = Scanner::new();
    let err = scanner.feed(b"SELECT '\xff';\n", true, &mut Vec::new()).unwrap_err();
    assert!(matches!(err, LoadError::Format { line: 1, .. }), "{err:?}");
}

#[test]
fn a_statement_split_over_pieces() {
    let mut scanner = Scanner::new();
    let mut events = Vec::new();
    scanner.feed(b"SELECT 'a", false, &mut events).unwrap();
    scanner.feed(b"b';\n", true, &mut events).unwrap();
    assert!(matches!(&events[..], [Event::Stmt(s)] if s.text == "SELECT 'ab'" && s.line == 1));
}

#[test]
fn a_long_function_body_is_not_scanned_again_at_each_line() {
    let mut sql = String::from("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $body$\nBEGIN\n");
    for i in 0..20_000 {
        sql.push_str(&format!("  PERFORM {i};\n"));
    }
    sql.push_str("\\o inside the body is data;\nEND;\n$body$;\nSELECT 1;\n");
    let start = std::time::Instant::now();
    let got = scan(&sql).unwrap();
    assert_eq!(got.len(), 2);
    assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
}
