//! Newtypes for the ids that cross the wire, each parsed once at the edge.

use std::fmt;
use std::str::FromStr;

/// A Sentry event id: 32 lowercase hex digits. The dashed UUID form is accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId(uuid::Uuid);

impl EventId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::try_parse(s).map(Self)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

/// A project's numeric id, the last segment of a DSN. Relay routes require digits, and so do we.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct ProjectId(i64);

impl ProjectId {
    pub fn new(id: i64) -> Self {
        Self(id)
    }
    pub fn value(self) -> i64 {
        self.0
    }
}

impl FromStr for ProjectId {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.parse::<i64>() {
            Ok(id) if id > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(Self(id)),
            _ => Err("project id must be a positive integer"),
        }
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A project as a DSN's path (and the request path `/api/{project}/…`) names it: by its id, as Splat
/// prints DSNs, or by its slug, as the seed printed them. Which project it is, only the key can say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef(String);

impl ProjectRef {
    /// Whether this names the project with this id and slug.
    pub fn names(&self, id: ProjectId, slug: &str) -> bool {
        self.0.parse::<ProjectId>().ok() == Some(id) || self.0 == slug
    }
}

impl FromStr for ProjectRef {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=100).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        match ok {
            true => Ok(Self(s.to_owned())),
            false => Err("project must be a project id or slug"),
        }
    }
}

impl fmt::Display for ProjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The public half of a DSN: the only credential an SDK sends. Up to 64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicKey(String);

impl PublicKey {
    /// A fresh key: 32 lowercase hex digits, as Sentry generates them.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PublicKey {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("public key must be 1 to 64 letters, digits, '-' or '_'");
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_id_accepts_both_forms_and_prints_simple() {
        let a: EventId = "9ec79c33ec9942ab8353589fcb2e04dc".parse().unwrap();
        let b: EventId = "9EC79C33-EC99-42AB-8353-589FCB2E04DC".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(b.to_string(), "9ec79c33ec9942ab8353589fcb2e04dc");
        assert!("nope".parse::<EventId>().is_err());
    }

    #[test]
    fn project_id_is_a_positive_integer() {
        assert_eq!("42".parse::<ProjectId>().unwrap().value(), 42);
        for bad in ["0", "-1", "+1", "1a", "", "99999999999999999999"] {
            assert!(bad.parse::<ProjectId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn public_key_rejects_odd_characters() {
        assert!("e12d836b15bb49d7bbf99e64295d995b"
            .parse::<PublicKey>()
            .is_ok());
        assert!("a b".parse::<PublicKey>().is_err());
        assert!("k\"ey".parse::<PublicKey>().is_err());
        assert_eq!(PublicKey::generate().as_str().len(), 32);
    }
}
