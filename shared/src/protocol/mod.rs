//! The Sentry wire protocol as Relay speaks it: ids, the DSN, authentication, content encodings, envelope
//! framing and size limits. Nothing here touches storage or the network; every function is a pure
//! transformation of request bytes, so hostile input is tested without a server.

pub mod auth;
pub mod category;
pub mod decode;
pub mod dsn;
pub mod envelope;
mod ids;
pub mod lenient;
pub mod limits;
pub mod store;

pub use auth::{AuthError, AuthSource, Credentials};
pub use category::DataCategory;
pub use decode::{decode_body, DecodeError};
pub use dsn::Dsn;
pub use envelope::{Envelope, EnvelopeError, EnvelopeHeaders, Item, ItemHeaders, ItemType};
pub use ids::{EventId, ProjectId, ProjectRef, PublicKey};
pub use limits::Limits;
