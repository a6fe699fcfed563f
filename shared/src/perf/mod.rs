//! Performance monitoring: what the processor derives from transactions and their spans before they are
//! stored (normalized span descriptions, N+1 queries, per-endpoint latency sketches).

pub mod n_plus_one;
pub mod normalize;
pub mod sketch;
pub mod transaction;
