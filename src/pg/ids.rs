//! New row ids.

/// A new time-ordered (version 7) UUID: challenges and claims, appended at the right edge
/// of their primary keys instead of landing on a random leaf of a large index.
pub fn uuid_v7() -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*uuid::Uuid::now_v7().as_bytes())
}

/// A new random (version 4) factor id, made before the insert: a sealed secret is bound to
/// its row's id.
pub fn new_factor_id() -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*uuid::Uuid::new_v4().as_bytes())
}
