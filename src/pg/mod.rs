//! The Postgres plumbing, below every domain module: errors and their SQLSTATEs, statements
//! prepared once per backend, the schema checks and the pinned search_path, the guard
//! around C callbacks, the ProcessUtility hook, SQL type conversions, clock and ids. Nothing
//! here knows a factor, a session or a verification.

pub mod clock;
pub mod error;
pub mod guard;
pub mod ids;
pub mod schema;
pub mod spi;
pub mod types;
pub mod utility_hook;
