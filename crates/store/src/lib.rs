//! The storage traits of switchboard and the error they share.
//!
//! Every mutating method is **one transaction** in the backend: it checks the
//! access rules against the rows it reads inside that transaction, makes the
//! change, and commits before returning. Event delivery adds its outbox rows
//! inside those same transactions, so an accepted change and the events it
//! causes are stored together or not at all.
//!
//! Methods take an [`Actor`](switchboard_domain::Actor) (a user of a company)
//! or a [`CompanyId`](switchboard_domain::CompanyId) and never return another
//! company's objects: those are simply not found.
//!
//! Backends: `switchboard-store-sqlite` (embedded default). A backend proves
//! itself with the [`conformance`] suite.

pub mod conformance;
mod delivery;
pub mod envelope;
mod error;
mod files;
mod model;
mod retention;
mod traits;

pub use delivery::*;
pub use error::{StoreError, StoreResult};
pub use files::*;
pub use model::*;
pub use retention::*;
pub use traits::*;
