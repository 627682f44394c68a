//! The contenders of the benchmark by name: the sidecar's copies and the
//! baselines, their ids in `--only` and the report, and their lines in the table.

/// One way of making a staging copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Contender {
    /// The cold sidecar's first copy from the custom dump.
    SidecarDump,
    /// The cold sidecar's first copy from the Odoo zip.
    SidecarZip,
    /// The warm sidecar's repeat copy, from its template.
    SidecarRepeat,
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
pub const ALL: [Contender; 7] = [
    Contender::SidecarDump,
    Contender::SidecarZip,
    Contender::SidecarRepeat,
    Contender::Odoo,
    Contender::PgRestore,
    Contender::PgRestoreJ,
    Contender::FileCopy,
];

/// The sidecar's contenders, in the order of the ratios.
pub const SIDECARS: [Contender; 3] = [Contender::SidecarDump, Contender::SidecarZip, Contender::SidecarRepeat];

/// The baselines, in the order of the ratios.
pub const BASELINES: [Contender; 4] = [Contender::Odoo, Contender::PgRestore, Contender::PgRestoreJ, Contender::FileCopy];

impl Contender {
    /// Its name in `--only`, the JSON report and the progress lines.
    pub fn id(self) -> &'static str {
        match self {
            Contender::SidecarDump => "sidecar-dump",
            Contender::SidecarZip => "sidecar-zip",
            Contender::SidecarRepeat => "sidecar-repeat",
            Contender::Odoo => "odoo",
            Contender::PgRestore => "pg_restore",
            Contender::PgRestoreJ => "pg_restore-j",
            Contender::FileCopy => "file_copy",
        }
    }

    /// Its line in the table.
    pub fn label(self, cores: usize) -> String {
        match self {
            Contender::SidecarDump => "sidecar, first copy, custom dump".into(),
            Contender::SidecarZip => "sidecar, first copy, Odoo zip".into(),
            Contender::SidecarRepeat => "sidecar, repeat copy (template)".into(),
            Contender::Odoo => "Odoo path: createdb+psql -f+filestore cp".into(),
            Contender::PgRestore => "pg_restore (1 job), local file".into(),
            Contender::PgRestoreJ => format!("pg_restore -j{cores}, local file"),
            Contender::FileCopy => "TEMPLATE … FILE_COPY + cp -al".into(),
        }
    }
}
