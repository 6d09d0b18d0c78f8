//! One client connection's facts (which listener, TLS, SNI, the client certificate),
//! shared by every request on it: read by the control plane and the data plane alike.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::tls::PeerCert;

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// APIs, and the Gateway API too when no `control_api_port` is set.
    Gateway,
    /// Only the Gateway API (`control_api_port`).
    Control,
}

/// Facts about one client connection, shared by every request on it.
#[derive(Debug)]
pub struct ConnInfo {
    /// Client address.
    pub remote: SocketAddr,
    /// Which listener accepted it.
    pub role: Role,
    /// True for HTTPS.
    pub tls: bool,
    /// SNI sent by the client.
    pub sni: Option<String>,
    /// The client certificate (verified possession; trust decided per request).
    pub peer: Option<Arc<PeerCert>>,
    /// The certificate's session keys, derived on first use.
    pub cert_lookup: crate::pipeline::certificate::CertLookupCache,
}
