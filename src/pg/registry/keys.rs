//! The advisory-lock keys of the registry: stable 32-bit hashes of the role
//! and of each name in flight, and the key of the admission lock.

/// The second key of the admission lock; [`name_key`] never returns it.
pub(super) const ADMISSION: i32 = 0;

/// The stable 32-bit key of a name (FNV-1a of its bytes; never [`ADMISSION`]).
pub fn name_key(name: &str) -> i32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    match hash as i32 {
        ADMISSION => 1,
        key => key,
    }
}

/// The key of a role, the first key of every lock of its jobs.
pub fn role_key(role: &str) -> i32 {
    name_key(role)
}
