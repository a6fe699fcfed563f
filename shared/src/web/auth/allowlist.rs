//! Who may sign in: `SPLAT_ALLOWED_USERS` (exact addresses) and `SPLAT_ALLOWED_DOMAINS` (the address's
//! domain). `example.com` allows `example.com` and every subdomain; `*.example.com` only subdomains.

/// The configured addresses and domains, lowercased.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    users: Vec<String>,
    domains: Vec<String>,
}

impl Allowlist {
    pub fn new(users: &[String], domains: &[String]) -> Self {
        let norm = |s: &String| s.trim().trim_end_matches('.').to_ascii_lowercase();
        Self {
            users: users.iter().map(norm).filter(|u| !u.is_empty()).collect(),
            domains: domains
                .iter()
                .map(|d| norm(d).trim_start_matches('@').to_owned())
                .filter(|d| !d.is_empty() && d != "*.")
                .collect(),
        }
    }

    /// Whether `email` may use the UI. Anything that is not `local@domain` is refused.
    pub fn allows(&self, email: &str) -> bool {
        let email = email.trim().to_ascii_lowercase();
        let Some((local, domain)) = email.rsplit_once('@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.');
        if local.is_empty() || domain.is_empty() || local.contains('@') {
            return false;
        }
        self.users.contains(&email) || self.domains.iter().any(|d| domain_matches(d, domain))
    }
}

fn domain_matches(pattern: &str, domain: &str) -> bool {
    let is_subdomain = |parent: &str| {
        domain
            .strip_suffix(parent)
            .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
    };
    match pattern.strip_prefix("*.") {
        Some(parent) => is_subdomain(parent),
        None => domain == pattern || is_subdomain(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(users: &[&str], domains: &[&str]) -> Allowlist {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Allowlist::new(&own(users), &own(domains))
    }

    #[test]
    fn users_match_exactly_ignoring_case() {
        let l = list(&["Ada@Example.com"], &[]);
        assert!(l.allows("ada@example.com"));
        assert!(l.allows(" ADA@example.com "));
        assert!(!l.allows("ada@example.com.evil"));
        assert!(!l.allows("bob@example.com"));
        assert!(!l.allows("x-ada@example.com"));
    }

    #[test]
    fn domains_match_themselves_and_subdomains() {
        let l = list(&[], &["example.com", "*.corp.test", "@mail.test"]);
        for ok in [
            "a@example.com",
            "a@eu.example.com",
            "a@x.y.example.com",
            "a@example.com.",
            "a@b.corp.test",
            "a@mail.test",
        ] {
            assert!(l.allows(ok), "{ok}");
        }
        for refused in [
            "a@evilexample.com",
            "a@example.com.evil",
            "a@corp.test",
            "a@.example.com",
            "a@example.org",
            "@example.com",
            "example.com",
            "a@b@example.com",
            "",
        ] {
            assert!(!l.allows(refused), "{refused}");
        }
    }

    #[test]
    fn an_empty_list_allows_nobody() {
        assert!(!Allowlist::default().allows("a@example.com"));
        assert!(!list(&[], &["*."]).allows("a@example.com"));
    }
}
