//! A client certificate chain as a TLS peer sends it (DER): the facts the gateway derives
//! per connection. The leaf is the input; a second certificate follows when the input holds
//! a 0xFF separator, to exercise chains.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;

fuzz_target!(|data: &[u8]| {
    let chain: Vec<CertificateDer<'_>> = data
        .splitn(2, |b| *b == 0xFF)
        .map(|part| CertificateDer::from(part.to_vec()))
        .collect();
    let _ = certgate::tls::PeerCert::from_chain(&chain);
});
