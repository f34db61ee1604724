//! What the SQL backends of switchboard (the embedded SQLite file and
//! PostgreSQL) share: the rows they read and how a row becomes a wire
//! object, the JSON documents stored in text columns, the assembly of whole
//! messages from their rows, and the failure type their functions return.
//!
//! The SQL itself stays in each backend: the two dialects differ (placeholders,
//! arrays, locking), and each backend's transactions are built for how its
//! database runs them side by side.

pub mod created_events;
pub mod failure;
pub mod integration_rows;
pub mod messages;
pub mod rows;
