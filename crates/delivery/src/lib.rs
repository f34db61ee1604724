//! Event delivery to bots.
//!
//! The outbox rows are written by the store in the transaction of each chat
//! change. This crate's workers ([`dispatcher::run`]) claim due lanes with a
//! lease — each lane's head and the pending events behind it, a run sent one
//! after another under that lease — send them with a [`Transport`]
//! ([`webhook`] or [`sqs`], several events of one queue per request), and
//! record each attempt and its [`Verdict`](switchboard_store::Verdict)
//! decided by the pure [`policy`], claiming the next lanes in the same step.
//! A delivery the store leased as it queued it (the first of an idle lane,
//! on SQLite) is handed to the workers after the commit and sent without a
//! claim; one queued behind a lane this process is sending joins that run
//! ([`runs`]). Nothing here holds a database transaction across a send.
//!
//! Guarantees: at least once (a crash between send and record sends again
//! after the lease, which is short and extended while a send is in flight:
//! see [`leases`]); per (integration, channel) the first deliveries follow
//! `channelSeq`; a failing lane holds back only itself; an integration never
//! has more than its limit in flight.

mod attempt;
pub mod dispatcher;
pub mod idle;
pub mod leases;
pub mod policy;
mod recorder;
pub mod runs;
pub mod sqs;
pub mod target_guard;
pub mod transport;
pub mod webhook;

pub use dispatcher::{DispatchSettings, run};
pub use idle::{IdleReporter, IdleWatch, idle_signal};
pub use policy::{AttemptResult, RetryPolicy};
pub use sqs::{SqsSettings, SqsTransport};
pub use target_guard::TargetGuard;
pub use transport::{Transport, Transports};
pub use webhook::WebhookTransport;
