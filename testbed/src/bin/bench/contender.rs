//! The contenders of the benchmark by name: the sidecar's copies and the
//! baselines, their ids in `--only` and the report, and their lines in the table.

/// One way of making a staging copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contender {
    /// The cold sidecar's first copy from the custom dump.
    SidecarDump,
    /// The cold sidecar's first copy from the Odoo zip.
    SidecarZip,
    /// The cold sidecar's first copy from the custom dump with a
    /// `.filestore.tar.gz` companion holding the zip's filestore (issue 21).
    SidecarDumpCompanion,
    /// The warm sidecar's repeat copy, from its template.
    SidecarRepeat,
    /// The cold sidecar's first copy from the custom dump, anonymized (issue 20).
    SidecarAnonymized,
    /// The warm sidecar's repeat anonymized copy, from its masked template
    /// (the warm sidecar has `numikube_staging_anonymize_key`).
    SidecarAnonymizedRepeat,
    /// `createdb` + `psql -f dump.sql` + `cp -r` of the filestore.
    Odoo,
    /// `createdb` + single-job `pg_restore`.
    PgRestore,
    /// `createdb` + `pg_restore -j <cores>`.
    PgRestoreJ,
    /// `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` + `cp -al`.
    FileCopy,
}

/// Every contender, in the order of the table.
pub const ALL: [Contender; 10] = [
    Contender::SidecarDump,
    Contender::SidecarZip,
    Contender::SidecarDumpCompanion,
    Contender::SidecarRepeat,
    Contender::SidecarAnonymized,
    Contender::SidecarAnonymizedRepeat,
    Contender::Odoo,
    Contender::PgRestore,
    Contender::PgRestoreJ,
    Contender::FileCopy,
];

/// The sidecar's contenders, in the order of the ratios.
pub const SIDECARS: [Contender; 6] = [
    Contender::SidecarDump,
    Contender::SidecarZip,
    Contender::SidecarDumpCompanion,
    Contender::SidecarRepeat,
    Contender::SidecarAnonymized,
    Contender::SidecarAnonymizedRepeat,
];

/// Which of the bench's sidecars makes a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidecarKind {
    /// Template cache off: every copy is a first copy.
    Cold,
    /// Template cache on, an anonymization key set: repeat copies.
    Warm,
}

/// The baselines, in the order of the ratios.
pub const BASELINES: [Contender; 4] = [Contender::Odoo, Contender::PgRestore, Contender::PgRestoreJ, Contender::FileCopy];

impl Contender {
    /// Whether the sidecar makes this copy (else it is a baseline).
    pub fn is_sidecar(self) -> bool {
        SIDECARS.contains(&self)
    }

    /// For a sidecar's copy: which sidecar makes it, the client whose backup
    /// it copies, and whether it is anonymized; `None` for a baseline.
    pub fn copy(self) -> Option<(SidecarKind, &'static str, bool)> {
        match self {
            Contender::SidecarDump => Some((SidecarKind::Cold, "benchdump", false)),
            Contender::SidecarZip => Some((SidecarKind::Cold, "benchzip", false)),
            Contender::SidecarDumpCompanion => Some((SidecarKind::Cold, "benchfs", false)),
            Contender::SidecarAnonymized => Some((SidecarKind::Cold, "benchdump", true)),
            Contender::SidecarRepeat => Some((SidecarKind::Warm, "benchdump", false)),
            Contender::SidecarAnonymizedRepeat => Some((SidecarKind::Warm, "benchdump", true)),
            Contender::Odoo | Contender::PgRestore | Contender::PgRestoreJ | Contender::FileCopy => None,
        }
    }

    /// Its name in `--only`, the JSON report and the progress lines.
    pub fn id(self) -> &'static str {
        match self {
            Contender::SidecarDump => "sidecar-dump",
            Contender::SidecarZip => "sidecar-zip",
            Contender::SidecarDumpCompanion => "sidecar-dump-companion",
            Contender::SidecarRepeat => "sidecar-repeat",
            Contender::SidecarAnonymized => "sidecar-anonymized",
            Contender::SidecarAnonymizedRepeat => "sidecar-anonymized-repeat",
            Contender::Odoo => "odoo",
            Contender::PgRestore => "pg_restore",
            Contender::PgRestoreJ => "pg_restore-j",
            Contender::FileCopy => "file_copy",
        }
    }

    /// Its line in the table.
    pub fn label(self, cores: usize) -> String {
        // At most 42 characters: the width of the table's first column.
        match self {
            Contender::SidecarDump => "sidecar, first copy, custom dump".into(),
            Contender::SidecarZip => "sidecar, first copy, Odoo zip".into(),
            Contender::SidecarDumpCompanion => "sidecar, first copy, dump + fs companion".into(),
            Contender::SidecarRepeat => "sidecar, repeat copy (template)".into(),
            Contender::SidecarAnonymized => "sidecar, first copy, dump, anonymized".into(),
            Contender::SidecarAnonymizedRepeat => "sidecar, repeat copy, anonymized".into(),
            Contender::Odoo => "Odoo path: createdb+psql -f+filestore cp".into(),
            Contender::PgRestore => "pg_restore (1 job), local file".into(),
            Contender::PgRestoreJ => format!("pg_restore -j{cores}, local file"),
            Contender::FileCopy => "TEMPLATE … FILE_COPY + cp -al".into(),
        }
    }
}
