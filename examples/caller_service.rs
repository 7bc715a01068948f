//! A service that calls another with Tessera tokens: a [`TokenSource`] keeps
//! a token for the callee's audience cached and refreshed ahead of expiry,
//! and [`AuthLayer`] stamps it on every call of the tonic channel.
//!
//! ```text
//! TESSERA=http://127.0.0.1:8080 CLIENT_ID=billing CLIENT_SECRET=… \
//!   cargo run -p tessera-examples --example caller_service
//! ```
//!
//! Settings (environment): `TESSERA`, `CLIENT_ID`, `CLIENT_SECRET`,
//! `INVOICES` (the resource service, default `http://127.0.0.1:50051`),
//! `AUDIENCE` (default `https://invoices.internal`), `CALLS` (default 3).
//!
//! With TLS: `CA` (a PEM CA trusted for both `https://` endpoints) and
//! `CLIENT_CERT` / `CLIENT_KEY` (this service's certificate, presented to
//! both). Without `CLIENT_SECRET` the certificate is the credential (RFC 8705
//! `tls_client_auth`) and the tokens are bound to it; `PRESENT_CERT_TO_INVOICES=0`
//! calls the resource service without it, to see a bound token refused.

use tessera_sdk::{AuthLayer, CachePolicy, TokenClient, TokenRequest};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use tessera_examples::pb;

fn setting(name: &str, default: Option<&str>) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .or(default.map(str::to_owned))
        .ok_or_else(|| format!("set {name} (see the top of examples/caller_service.rs)"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ca = std::env::var("CA").ok().map(std::fs::read).transpose()?;
    let identity = match (std::env::var("CLIENT_CERT"), std::env::var("CLIENT_KEY")) {
        (Ok(cert), Ok(key)) => Some((std::fs::read(cert)?, std::fs::read(key)?)),
        _ => None,
    };
    let mut builder = TokenClient::builder(setting("TESSERA", None)?);
    if let Some(ca) = &ca {
        builder = builder.tls_ca_pem(ca.clone());
    }
    if let Some((cert, key)) = &identity {
        builder = builder.tls_identity(cert.clone(), key.clone());
    }
    let client_id = setting("CLIENT_ID", None)?;
    let client = match std::env::var("CLIENT_SECRET") {
        Ok(secret) => builder.client_secret(client_id, secret),
        Err(_) if identity.is_some() => builder.tls_client_auth(client_id),
        Err(_) => return Err("set CLIENT_SECRET, or CLIENT_CERT and CLIENT_KEY".into()),
    }
    .build()?;
    // One source per (scopes, audiences); clones share the cached token.
    let tokens = client.token_source(
        TokenRequest::new()
            .scope("invoices:read")
            .audience(setting("AUDIENCE", Some("https://invoices.internal"))?),
        CachePolicy::default(),
    );
    let invoices_url = setting("INVOICES", Some("http://127.0.0.1:50051"))?;
    let mut endpoint = tonic::transport::Endpoint::from_shared(invoices_url.clone())?;
    if invoices_url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &ca {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        let present = setting("PRESENT_CERT_TO_INVOICES", Some("1"))? != "0";
        if let (Some((cert, key)), true) = (&identity, present) {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint.connect().await?;
    let channel = tower::ServiceBuilder::new()
        .layer(AuthLayer::new(tokens))
        .service(channel);
    let mut invoices = pb::invoices_client::InvoicesClient::new(channel);
    let calls: usize = setting("CALLS", Some("3"))?.parse()?;
    for n in 1..=calls {
        let invoice = invoices
            .get_invoice(pb::GetInvoiceRequest { id: format!("INV-{n}") })
            .await?
            .into_inner();
        println!("{} {} (served to {})", invoice.id, invoice.amount, invoice.served_to);
    }
    Ok(())
}
