//! The PostgreSQL store's tests, one binary: the conformance suite, the
//! schema checks and several instances on one database, each on a fresh
//! database dropped after.

mod conformance;
mod instances;
mod migrations;
