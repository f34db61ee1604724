//! The end-to-end tests of the `switchboard` server, one binary: a real server
//! (in process, or as a separate process where a test stops or kills it) on a
//! real SQLite file or PostgreSQL database, spoken to over HTTP, with real
//! receivers: an HTTP server, moto's SQS, s3s-fs. Harness in [`support`].

mod support;

mod admin_commands;
mod api_access;
mod api_bad_input;
mod api_channels;
mod api_messages;
mod api_users;
mod bot_sdk;
mod command_line;
mod connections;
mod console;
mod crash;
mod database_outage;
mod delivery;
mod demo;
mod developer_commands;
mod example_bots;
mod files;
mod instances;
mod openapi_conformance;
mod operations;
mod person_events;
mod pull;
mod retention;
mod sqs;
mod xbees_clients;
