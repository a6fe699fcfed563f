//! The integration tests, one module per file beside this one, in one binary: each test binary links all of
//! Splat (libSQL, the AWS SDK, the UI's templates), the slowest step of a build on two cores, so they share
//! one link. Run one file's tests with `cargo test -p splat-tests --test integration <file>::`.

mod aws_emulator;
mod grouping;
mod health;
mod ingest_http;
mod issue_pages;
mod issues;
mod lake;
mod lambda_events;
mod leftovers;
mod mcp;
mod monitors;
mod notify;
mod perf_windows;
mod performance_web;
mod retention;
mod runner;
mod search;
mod sign_in;
mod streamed;
mod web;
