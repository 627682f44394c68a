//! Where a copy's filestore comes from (docs/contract.md, *Restore → Filestore*):
//! an Odoo zip's own `filestore/`; else a companion archive beside the
//! backup in the bucket; else production's filestore mounted on this host
//! (`numikube_staging_filestore_source`); else none, and the copy says so.

use std::path::{Path, PathBuf};

use super::companion;
use super::dirs::link_tree;
use super::filling::{FilestoreError, FillError, Filling};
use crate::copy::restore::format::Format;
use crate::copy::restore::spool::check_room;
use crate::services::Services;
use crate::storage::Backup;

/// Where a copy's filestore came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The Odoo zip's `filestore/`.
    Zip,
    /// The companion archive of this key.
    Companion(String),
    /// Production's filestore in this folder.
    Source(PathBuf),
    /// Nowhere: the copy has no attachments' files.
    None,
}

impl std::fmt::Display for Origin {
    /// As the job report gives it: `zip`, `companion <key>`, `source <folder>` or `none`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Zip => f.write_str("zip"),
            Origin::Companion(key) => write!(f, "companion {key}"),
            Origin::Source(folder) => write!(f, "source {}", folder.display()),
            Origin::None => f.write_str("none"),
        }
    }
}

/// Chooses where the filestore of a copy of `backup` (of `format`, for
/// `client`) comes from, and starts filling `dir` from there unless the
/// restore itself does (a zip).
pub async fn choose(
    services: &Services,
    backup: &Backup,
    format: Format,
    client: Option<&str>,
    dir: &Path,
) -> Result<(Origin, Option<Filling>), FilestoreError> {
    if format == Format::OdooZip {
        return Ok((Origin::Zip, None));
    }
    let found = services.source.companion(backup).await.map_err(|source| FilestoreError::Open { key: backup.key.clone(), source })?;
    if let Some(archive) = found {
        let origin = Origin::Companion(archive.key.clone());
        let fill_err = |source: FillError| FilestoreError::Fill { origin: origin.to_string(), source };
        let data_dir = dir.parent().unwrap_or(dir);
        check_room(data_dir, archive.size, "the filestore archive").map_err(|e| fill_err(companion::CompanionError::Room(e).into()))?;
        let stream = services.source.open(&archive).await.map_err(|source| FilestoreError::Open { key: archive.key.clone(), source })?;
        let what = "reading the filestore archive failed";
        let stream = companion::decompressed(stream)
            .await
            .map_err(|source| fill_err(companion::CompanionError::Io { what: what.into(), source }.into()))?;
        let reader = companion::blocking_reader(stream);
        let (size, target) = (archive.size, dir.to_path_buf());
        let filling = Filling::start(origin.to_string(), dir, move |stop| Ok(companion::unpack(reader, size, &target, stop)?));
        tracing::info!(key = %backup.key, companion = %archive.key, "unpacking the filestore archive beside the load");
        return Ok((origin, Some(filling)));
    }
    let Some(folder) = client.and_then(|c| services.config.filestore_source_for(c)) else {
        return Ok((Origin::None, None));
    };
    if !folder.is_dir() {
        tracing::warn!(
            "numikube_staging_filestore_source: {} is not a folder on this host: the copy of {} has no filestore",
            folder.display(),
            backup.key
        );
        return Ok((Origin::None, None));
    }
    let (source, target) = (folder.clone(), dir.to_path_buf());
    let origin = Origin::Source(folder);
    let filling = Filling::start(origin.to_string(), dir, move |stop| {
        link_tree(&source, &target, stop).map_err(|e| FillError::Link { folder: source.clone(), source: e })
    });
    tracing::info!(key = %backup.key, origin = %origin, "linking production's filestore beside the load");
    Ok((origin, Some(filling)))
}
