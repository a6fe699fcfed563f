//! The TCP and TLS connector libsql's remote client (hyper 0.14) uses for `SPLAT_DATABASE_URL`, over the
//! rustls 0.23 stack Splat already has (libsql's own `tls` feature would bring a second one). Only in builds
//! with the `remote-db` feature.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Opens TCP (and TLS for https) connections for libsql's hyper 0.14 client.
#[derive(Clone)]
pub(super) struct Connector {
    tls: tokio_rustls::TlsConnector,
}

impl Connector {
    pub(super) fn new() -> Self {
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
    use super::*;

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
