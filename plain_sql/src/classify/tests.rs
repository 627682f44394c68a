//! Unit tests of the classification.

use super::*;

fn kind(sql: &str) -> Kind {
    classify(sql, 1).unwrap().kind
}

#[test]
fn kinds() {
    assert_eq!(kind("SET search_path = ''"), Kind::Session);
    assert_eq!(kind("SELECT pg_catalog.set_config('search_path', '', false)"), Kind::Session);
    assert_eq!(kind("SELECT pg_catalog.setval('public.s', 3, true)"), Kind::Plain);
    assert_eq!(kind("COPY public.t (a, b) FROM stdin"), Kind::Copy { lines: true });
    assert_eq!(kind("COPY public.t FROM stdin WITH (FORMAT csv)"), Kind::Copy { lines: false });
    assert_eq!(kind("CREATE INDEX i ON public.t USING btree (a)"), Kind::Index { table: "public.t".into(), exclusive: false });
    assert_eq!(
        kind("ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id)"),
        Kind::Index { table: "public.t".into(), exclusive: true }
    );
    assert_eq!(
        kind("ALTER TABLE ONLY public.t ADD CONSTRAINT t_fk FOREIGN KEY (a) REFERENCES public.u(id)"),
        Kind::ForeignKey {
            table: "public.t".into(),
            validate: Some((
                "ALTER TABLE ONLY \"public\".\"t\" VALIDATE CONSTRAINT \"t_fk\"".into(),
                ["\"public\".\"t\"".into(), "\"public\".\"u\"".into()]
            ))
        }
    );
    assert_eq!(kind("ALTER INDEX public.p_idx ATTACH PARTITION public.c_idx"), Kind::AfterIndex);
    assert_eq!(kind("ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('s'::regclass)"), Kind::Plain);
    assert_eq!(kind("CREATE TRIGGER x BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()"), Kind::PostData);
    assert_eq!(kind("this is not SQL"), Kind::Plain);
}

#[test]
fn refusals_and_tolerance() {
    assert!(matches!(classify("COPY t FROM PROGRAM 'id'", 4), Err(LoadError::ServerSide { line: 4, .. })));
    assert!(matches!(classify("COPY t FROM '/etc/passwd'", 4), Err(LoadError::ServerSide { .. })));
    assert!(matches!(classify("COPY t TO stdout", 4), Err(LoadError::Format { .. })));
    assert!(matches!(classify("SET standard_conforming_strings = off", 4), Err(LoadError::NonStandardStrings { line: 4 })));
    assert_eq!(classify("COMMENT ON EXTENSION x IS 'y'", 1).unwrap().tolerance, Some(Tolerance::ExtensionComment));
    assert_eq!(classify("ALTER TABLE public.t OWNER TO odoo", 1).unwrap().tolerance, Some(Tolerance::Owner));
    assert_eq!(classify("ALTER FUNCTION public.f() OWNER TO odoo", 1).unwrap().tolerance, Some(Tolerance::Owner));
    assert_eq!(classify("GRANT SELECT ON TABLE t TO r", 1).unwrap().tolerance, Some(Tolerance::Privileges));
    assert_eq!(classify("COMMENT ON TABLE t IS 'x'", 1).unwrap().tolerance, None);
}
