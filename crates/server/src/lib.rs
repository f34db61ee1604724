//! The `switchboard` server: configuration, telemetry, bootstrapping of an
//! empty database, the wiring of storage and HTTP API, and graceful shutdown.
//! The binary (`main.rs`) adds the command line on top; tests start the same
//! server in-process with [`app::start`].

pub mod admin;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod demo;
pub mod echo_bot;
pub mod http_server;
pub mod listen;
pub mod manage;
pub mod output;
pub mod retention;
pub mod telemetry;
pub mod trigger;

pub use config::Config;
