//! A copy's database once loaded: its final name, its publication and
//! template, the guard that drops it when it is not handed out, and the one
//! way a database of the sidecar's leaves.

mod discard;
mod final_name;
mod hidden;
mod publish;
pub mod templates;

pub use discard::{discard, drop_with_filestore};
pub use final_name::{put_in_place, PlaceError, Placing};
pub use hidden::Hidden;
pub use publish::{publish, Finished};
pub use templates::TemplateError;
