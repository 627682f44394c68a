//! A copy's filestore: the directories that go with databases, where a new
//! copy's files come from (the zip, a companion archive, production's
//! filestore on this host, or none) and the attachments whose file is missing.

mod attachments;
mod companion;
mod dirs;
mod filling;
mod origin;

pub use attachments::missing;
pub use dirs::{link_copy, link_copy_off_core, link_tree, path, remove, remove_off_core, rename, rename_off_core};
pub use filling::{FilestoreError, FillError, Filling};
pub use origin::{choose, Origin};

/// Where a copy's filestore came from and what it lacks, for the job's report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FilestoreReport {
    /// `zip`, `companion <key>`, `source <folder>` or `none` ([`Origin`]);
    /// `None` for a copy of a template kept by an older version, which did not record it.
    pub origin: Option<String>,
    /// Attachments whose file is missing from the filestore; `None` when they could not be counted.
    pub missing_attachments: Option<u64>,
}
