//! HTTP-level integration tests: each test starts the real server on a random loopback port
//! with a fresh database and talks to it over HTTP. Every suite runs on SQLite and on
//! PostgreSQL (`backend_tests!`); the PostgreSQL half is skipped, saying so, when no server
//! answers at TMF635_TEST_POSTGRES_URL, unless TMF635_TEST_REQUIRE_POSTGRES=1 (CI).
//!
//! One test binary (modules below) so the server links once.

#![forbid(unsafe_code)]

mod abuse;
mod array_index;
mod auth;
mod bulk;
mod bulk_memory;
mod bulk_processes;
mod bulk_stream;
mod delivery_failover;
mod drain;
mod egress;
mod errors;
mod event_pending_migration;
mod events;
mod fixtures;
mod helpers;
mod hub;
mod indexed_lengths;
mod input_fidelity;
mod listener;
mod listener_server;
mod operability;
mod processes;
mod query;
mod regex_and_patch_test;
mod retention;
mod scratch_database;
mod server_process;
mod smoke;
mod spec;
mod tenancy;
mod usage;
mod usage_specification;
mod writer_batches;
mod writes;
