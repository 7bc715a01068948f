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

use tessera_sdk::{AuthLayer, CachePolicy, TokenClient, TokenRequest};

use tessera_examples::pb;

fn setting(name: &str, default: Option<&str>) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .or(default.map(str::to_owned))
        .ok_or_else(|| format!("set {name} (see the top of examples/caller_service.rs)"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = TokenClient::builder(setting("TESSERA", None)?)
        .client_secret(setting("CLIENT_ID", None)?, setting("CLIENT_SECRET", None)?)
        .build()?;
    // One source per (scopes, audiences); clones share the cached token.
    let tokens = client.token_source(
        TokenRequest::new()
            .scope("invoices:read")
            .audience(setting("AUDIENCE", Some("https://invoices.internal"))?),
        CachePolicy::default(),
    );
    let channel = tonic::transport::Endpoint::from_shared(setting("INVOICES", Some("http://127.0.0.1:50051"))?)?
        .connect()
        .await?;
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
