//! The names of the databases the sidecar works in. None of them can be a
//! final name (final names always hold a `-`), so a database with such a
//! name is the sidecar's own work and can be found in `pg_database` alone.

use std::fmt;

/// What a working database is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkKind {
    /// `numikube_tmp_<id>`: a job's copy while it is restored and neutralized.
    Temp,
    /// `numikube_old_<id>`: a refreshed copy's previous version while the new one takes its name.
    Old,
    /// `numikube_tpl_<id>`: a kept template.
    Template,
}

impl WorkKind {
    /// The name prefix of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            WorkKind::Temp => "numikube_tmp_",
            WorkKind::Old => "numikube_old_",
            WorkKind::Template => "numikube_tpl_",
        }
    }
}

/// A working database's name: a kind and 32 hex digits (a job id without dashes, or a new uuid).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkingName {
    kind: WorkKind,
    id: String,
}

impl WorkingName {
    /// The working name of `kind` for a job id (dashes are dropped).
    pub fn for_job(kind: WorkKind, job_id: &str) -> WorkingName {
        WorkingName { kind, id: job_id.replace('-', "") }
    }

    /// A new, unique working name of `kind`.
    pub fn fresh(kind: WorkKind) -> WorkingName {
        WorkingName { kind, id: uuid::Uuid::new_v4().simple().to_string() }
    }

    /// Reads a database name back; `None` if it is not exactly a working name.
    pub fn parse(name: &str) -> Option<WorkingName> {
        [WorkKind::Temp, WorkKind::Old, WorkKind::Template].into_iter().find_map(|kind| {
            let id = name.strip_prefix(kind.prefix())?;
            (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| WorkingName { kind, id: id.to_string() })
        })
    }

    /// What it is for.
    pub fn kind(&self) -> WorkKind {
        self.kind
    }

    /// The 32 hex digits (a job id without its dashes).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The database name.
    pub fn as_string(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WorkingName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.prefix(), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_working_names_parse_back() {
        let temp = WorkingName::for_job(WorkKind::Temp, "0f8e5d0c-1a2b-4c3d-8e9f-001122334455");
        assert_eq!(temp.to_string(), "numikube_tmp_0f8e5d0c1a2b4c3d8e9f001122334455");
        assert_eq!(WorkingName::parse(&temp.to_string()), Some(temp.clone()));
        assert_eq!(WorkingName::parse("numikube_old_0f8e5d0c1a2b4c3d8e9f001122334455").map(|w| w.kind()), Some(WorkKind::Old));
        assert_eq!(WorkingName::parse(&WorkingName::fresh(WorkKind::Template).to_string()).map(|w| w.kind()), Some(WorkKind::Template));
        for not_ours in ["numikube_tmp_x-lab", "numikube_tmp_0f8e5d0c1a2b4c3d8e9f00112233445", "cosmos-lab_a", "numikube_tmp_"] {
            assert_eq!(WorkingName::parse(not_ours), None, "{not_ours}");
        }
    }

    #[test]
    fn working_names_are_short_identifiers() {
        let t = WorkingName::for_job(WorkKind::Temp, "0b8f3c1e-2f0a-4d0e-9a59-6f6f6f6f6f6f").to_string();
        assert!(t.len() <= 63 && !t.contains('-'));
    }
}
