//! The store's logic, written once for both databases: every storage trait
//! of `switchboard-store` implemented by [`SqlStore`] over a [`Backend`]
//! (the embedded SQLite file or PostgreSQL).
//!
//! - [`db`] is the transaction trait the logic runs statements on, and the
//!   values that cross it. SQL is written in PostgreSQL's dialect; the SQLite
//!   backend translates the few constructs SQLite spells otherwise.
//! - [`backend`] is what each database provides: how a change is run and
//!   committed (serializable re-runs on PostgreSQL, the group-commit writer
//!   on SQLite), how a query is run, and the delivery workers' claims.
//! - The modules below implement the traits: tenancy, users and bots,
//!   channels and members, messages, files, integrations, events and the
//!   delivery log.
//!
//! A change is one transaction: the rules are checked on rows read inside
//! it, its events and their deliveries are written in it, and the caller is
//! answered after it commits.
//!
//! **Sends in groups.** SendMessage, the change nearly all traffic makes, is
//! written for a group of requests (the `send` module): one statement per table for
//! the whole group. On PostgreSQL, where a statement is a round trip and a
//! commit a flush, one task per instance takes the sends waiting and runs
//! them as one change while the next ones gather (API alone on this
//! machine kind: about 2,700 messages/s one change per send, 5,000–6,000
//! grouped). One task, not several: two groups at once, even on disjoint
//! channels, aborted each other for serialization so often (1,938 re-runs
//! for 30,000 messages) that the rate fell by half. SQLite runs each send as
//! a group of one through its writer, which already commits the waiting
//! changes together and whose statements cost microseconds.
//!
//! **Why async code over a transaction trait.** The logic must run on
//! PostgreSQL, where every statement is a network round trip that should not
//! hold a thread, and on SQLite, where a statement takes microseconds and the
//! cost of handing it to another thread and waking the caller was most of
//! what a change cost. Written as async functions over [`Db`], one copy does
//! both: PostgreSQL's futures wait on the network under tokio; SQLite's
//! complete at once on the writer (or a reader) thread, which polls a
//! change's future once with a no-op waker and has its answer. The price on
//! SQLite is one boxed future per change, not per statement. The other
//! designs considered: the logic written twice (the state this replaces:
//! 2,700 identical lines that had begun to drift), or written blocking and
//! run on PostgreSQL in `spawn_blocking` with a synchronous driver (one
//! thread per open transaction, and a second PostgreSQL driver beside the
//! async one the rest of the server uses).

#[macro_use]
pub mod db;
#[macro_use]
pub mod backend;

pub mod failure;
pub mod integration_rows;
pub mod messages;
pub mod rows;

pub mod auth_cache;
mod channels;
mod events;
mod files;
mod integrations;
mod load;
mod maintenance;
mod message_changes;
mod pulled;
mod queue;
mod retention;
mod send;
mod tenancy;
mod users;

pub use backend::{Backend, BoxFuture, SqlStore};
pub use db::{Arg, Db, Effects, FromRow, FromValue, HandOffTerms, Row, ToArg, Value};
pub use failure::{DatabaseError, DatabaseErrorKind, Failure, Outcome};
