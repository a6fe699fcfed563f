//! The database on a libSQL server (`SPLAT_DATABASE_URL`, sqld or Turso) instead of a local file: every
//! statement goes over Hrana-over-HTTP, authenticated with a JWT (`SPLAT_DATABASE_TOKEN`).
//!
//! libsql's own TLS (`tls` feature) would bring a second rustls stack; [`Connector`] gives it TCP and
//! rustls 0.23 with the aws-lc-rs provider and the system's roots, as the rest of Splat uses.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::secret::Secret;

/// Where the database server is and the token that opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteDatabase {
    /// `libsql://host` (https), `https://host[:port]`, or `http://` to this machine only.
    pub url: String,
    pub token: Secret,
}

impl RemoteDatabase {
    /// `SPLAT_DATABASE_URL` and `SPLAT_DATABASE_TOKEN`; none when the URL is unset (a local file then).
    /// A URL that could leak the token (plain http to another machine) or a missing token is refused.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let set = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(url) = set("SPLAT_DATABASE_URL") else {
            return Ok(None);
        };
        let shown = crate::secret::redact_url(&url);
        let (scheme, rest) = url.split_once("://").unwrap_or_default();
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.contains('@') {
            anyhow::bail!("SPLAT_DATABASE_URL must be libsql://host, https://host or http://127.0.0.1:port (no user info), got {shown}");
        }
        match scheme.to_ascii_lowercase().as_str() {
            "libsql" | "https" => {}
            // Over plain http anyone on the path could read the token, and with it the database.
            "http" if crate::config::is_loopback_url(&url) => {}
            "http" => anyhow::bail!(
                "SPLAT_DATABASE_URL must be https:// or libsql:// (http:// only for a server on this machine), got {shown}"
            ),
            _ => anyhow::bail!(
                "SPLAT_DATABASE_URL must be a libsql://, https:// or http:// URL, got {shown}"
            ),
        }
        let token = set("SPLAT_DATABASE_TOKEN").ok_or_else(|| {
            anyhow::anyhow!(
                "SPLAT_DATABASE_URL is set but SPLAT_DATABASE_TOKEN is not (the server's JWT)"
            )
        })?;
        Ok(Some(Self {
            url: url.trim_end_matches('/').to_owned(),
            token: Secret::from(token),
        }))
    }

    /// The libsql client for this server (no request is sent until the first statement).
    pub(super) async fn database(&self) -> libsql::Result<libsql::Database> {
        libsql::Builder::new_remote(self.url.clone(), self.token.expose().to_owned())
            .connector(Connector::new())
            .build()
            .await
    }
}

/// Opens TCP (and TLS for https) connections for libsql's hyper 0.14 client.
#[derive(Clone)]
pub(super) struct Connector {
    tls: tokio_rustls::TlsConnector,
}

impl Connector {
    fn new() -> Self {
        let mut roots = rustls::RootCertStore::empty();
        // Certificates the system store cannot parse are skipped; none at all makes https fail per request.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }

    async fn connect(self, uri: http02::Uri) -> io::Result<Socket> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_owned());
        let host = uri.host().ok_or_else(|| invalid("no host"))?.to_owned();
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid("not an http or https URL")),
        };
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tcp = TcpStream::connect((bare.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        if !tls {
            return Ok(Socket::Plain(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(bare)
            .map_err(|_| invalid("not a valid server name"))?;
        Ok(Socket::Tls(Box::new(self.tls.connect(name, tcp).await?)))
    }
}

impl tower::Service<http02::Uri> for Connector {
    type Response = Socket;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Socket>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http02::Uri) -> Self::Future {
        Box::pin(self.clone().connect(uri))
    }
}

/// A connection to the server, plain or TLS.
pub(super) enum Socket {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl hyper014::client::connect::Connection for Socket {
    fn connected(&self) -> hyper014::client::connect::Connected {
        hyper014::client::connect::Connected::new()
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> anyhow::Result<Option<RemoteDatabase>> {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        RemoteDatabase::from_lookup(&|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn urls_and_tokens() {
        assert_eq!(parse(&[]).unwrap(), None, "unset: the local file");
        assert_eq!(parse(&[("SPLAT_DATABASE_URL", " ")]).unwrap(), None);
        let token = ("SPLAT_DATABASE_TOKEN", "jwt-secret");
        for ok in [
            "libsql://db-me.turso.io",
            "https://db.example.com:8443/",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            let remote = parse(&[("SPLAT_DATABASE_URL", ok), token])
                .unwrap()
                .unwrap();
            assert_eq!(remote.url, ok.trim_end_matches('/'));
            assert_eq!(remote.token.expose(), "jwt-secret");
            assert!(!format!("{remote:?}").contains("jwt-secret"));
        }
        for (bad, why) in [
            (
                "http://db.example.com",
                "http:// only for a server on this machine",
            ),
            ("http://127.0.0.1@db.example.com", "no user info"),
            ("https://user:pw@db.example.com", "no user info"),
            ("ws://127.0.0.1:8080", "must be a libsql://"),
            ("db.example.com", "must be"),
            ("file:///tmp/splat.db", "must be"),
        ] {
            let err = parse(&[("SPLAT_DATABASE_URL", bad), token])
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(
                !err.contains("pw@"),
                "credentials never reach an error: {err}"
            );
        }
        let err = parse(&[("SPLAT_DATABASE_URL", "libsql://db.example.com")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SPLAT_DATABASE_TOKEN is not"), "{err}");
    }

    #[tokio::test]
    async fn connector_refuses_other_schemes() {
        use tower::ServiceExt;
        let err = Connector::new()
            .oneshot("ftp://127.0.0.1/x".parse().unwrap())
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
