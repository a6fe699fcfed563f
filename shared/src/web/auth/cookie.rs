//! Signed, expiring cookies: the session and the sign-in flow live in the browser, so any instance of the
//! UI (a Lambda, a restarted `splat serve`) can check them with the shared secret alone.
//!
//! A value is `base64url(json) "." base64url(HMAC-SHA256(secret, name "." base64url(json)))`, and the JSON
//! carries its own expiry (`exp`, unix seconds) beside the value. The cookie's name is under the MAC, so a
//! value sealed for one cookie is refused as another. The value is signed, not encrypted: the browser
//! can read it but not change it.

use axum::http::HeaderValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Seals and opens cookie values with one secret.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Sealed<T> {
    exp: i64,
    v: T,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, name: &str, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(name.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac
    }

    /// `value` for cookie `name`, valid until `exp` (unix seconds).
    pub fn seal<T: Serialize>(&self, name: &str, value: &T, exp: i64) -> String {
        let json = serde_json::to_vec(&Sealed { exp, v: value }).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let tag = URL_SAFE_NO_PAD.encode(self.mac(name, &payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The value sealed for cookie `name`, if the signature holds and it has not expired at `now`.
    pub fn open<T: DeserializeOwned>(&self, name: &str, sealed: &str, now: i64) -> Option<T> {
        let (payload, tag) = sealed.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Constant-time comparison inside `verify_slice`.
        self.mac(name, payload).verify_slice(&tag).ok()?;
        let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let sealed: Sealed<T> = serde_json::from_slice(&json).ok()?;
        (sealed.exp > now).then_some(sealed.v)
    }
}

/// `Set-Cookie` for a cookie the page's scripts never need: HttpOnly, SameSite=Lax (so it comes along on
/// the provider's redirect back, a top-level GET), and Secure whenever the site is reached over https.
pub fn set(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("splat_invalid=; Max-Age=0"))
}

/// `Set-Cookie` that deletes cookie `name`.
pub fn clear(name: &str, secure: bool) -> HeaderValue {
    set(name, "", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_sealed_value_opens_until_it_expires() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let sealed = signer.seal("session", &"ada@example.com", NOW + 60);
        assert_eq!(
            signer.open::<String>("session", &sealed, NOW).as_deref(),
            Some("ada@example.com")
        );
        assert_eq!(signer.open::<String>("session", &sealed, NOW + 60), None);
    }

    #[test]
    fn tampered_or_foreign_values_are_refused() {
        let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
        let sealed = signer.seal("session", &"ada@example.com", NOW + 60);
        let open = |s: &str| signer.open::<String>("session", s, NOW);
        // Another payload under the old signature: a longer expiry, or another user.
        let (_, tag) = sealed.split_once('.').unwrap();
        for forged_value in [
            r#"{"exp":9999999999,"v":"ada@example.com"}"#,
            r#"{"exp":1800000060,"v":"eve@example.com"}"#,
        ] {
            let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(forged_value));
            assert_eq!(open(&forged), None, "{forged_value}");
        }
        let mut flipped = sealed.clone().into_bytes();
        flipped[3] ^= 1;
        assert_eq!(open(&String::from_utf8(flipped).unwrap()), None);
        for junk in ["", ".", "abc", "a.b.c", "%%%.%%%"] {
            assert_eq!(open(junk), None, "{junk}");
        }
        // Sealed for another cookie, or with another secret.
        assert_eq!(signer.open::<String>("flow", &sealed, NOW), None);
        let other = Signer::new(b"another secret, also 32 bytes long");
        assert_eq!(other.open::<String>("session", &sealed, NOW), None);
    }

    #[test]
    fn cookie_attributes() {
        let v = set("splat_session", "x.y", 60, true);
        assert_eq!(
            v.to_str().unwrap(),
            "splat_session=x.y; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(!clear("splat_session", false)
            .to_str()
            .unwrap()
            .contains("Secure"));
    }
}
