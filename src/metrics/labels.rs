//! The label values of the sidecar's series, as enums so that no typo can make a new series.

/// How a copy's content was obtained: the `format` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// PostgreSQL custom dump (`PGDMP`), optionally gzip'ed.
    Custom,
    /// Odoo backup zip (`dump.sql` + `filestore/` + `manifest.json`).
    Zip,
    /// Plain SQL, optionally gzip'ed.
    Plain,
    /// Cloned from a kept (prewarmed) template database.
    Template,
}

impl Format {
    /// Every format, in label order.
    pub const ALL: [Format; 4] = [Format::Custom, Format::Zip, Format::Plain, Format::Template];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Custom => "custom",
            Format::Zip => "zip",
            Format::Plain => "plain",
            Format::Template => "template",
        }
    }
}

/// What a sweep removed: the `what` label of `numikube_staging_swept_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Swept {
    /// An expired copy or a leftover working database.
    Database,
    /// A filestore folder without its database.
    Filestore,
    /// A spooled download left by an interrupted job.
    Spool,
}

impl Swept {
    /// Every kind, in label order.
    pub const ALL: [Swept; 3] = [Swept::Database, Swept::Filestore, Swept::Spool];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Swept::Database => "database",
            Swept::Filestore => "filestore",
            Swept::Spool => "spool",
        }
    }
}

/// A job's state, the `state` label of the job series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Admitted, waiting for a restore slot.
    Queued,
    /// Downloading, restoring, neutralizing or publishing.
    Running,
    /// Published: the copy exists under its final name.
    Done,
    /// Failed or cancelled; nothing is left behind.
    Error,
}

impl JobState {
    /// Every state, in label order.
    pub const ALL: [JobState; 4] = [JobState::Queued, JobState::Running, JobState::Done, JobState::Error];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Error => "error",
        }
    }

    /// Whether a job in this state counts in `numikube_staging_jobs_in_flight`.
    pub fn in_flight(self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}
