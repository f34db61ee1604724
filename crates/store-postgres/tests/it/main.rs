//! The PostgreSQL store's tests, one binary: the conformance suite and the
//! schema checks, each on a fresh database dropped after.

mod conformance;
mod instances;
mod migrations;
