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
pub use filling::{FillError, Filling};
pub use origin::{choose, Origin};
