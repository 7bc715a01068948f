//! A resource service protected by Tessera tokens: `example.v1.Invoices`
//! over tonic, behind [`RequireScopes`]. Tokens are verified locally against
//! Tessera's keys (fetched over gRPC, refetched when a new `kid` appears).
//!
//! ```text
//! TESSERA=http://127.0.0.1:8080 CLIENT_ID=invoices CLIENT_SECRET=… \
//!   cargo run -p tessera-examples --example resource_service
//! ```
//!
//! Settings (environment): `TESSERA` (Tessera's endpoint, and its issuer
//! unless `ISSUER` is set), `CLIENT_ID` / `CLIENT_SECRET` (this service's own
//! client, for fetching keys; without them it fetches keys anonymously),
//! `TESSERA_CA` (a CA to trust for an `https://` Tessera), `LISTEN` (default
//! `127.0.0.1:50051`), `AUDIENCE` (default `https://invoices.internal`).
//!
//! Certificate-bound tokens (RFC 8705) are accepted only from the caller
//! holding the certificate. Either this service terminates TLS itself —
//! `TLS_CERT` / `TLS_KEY` (its own certificate) and `TLS_CLIENT_CA` (the CA
//! of callers' certificates, asked for but not required, so that a caller
//! without one is answered `UNAUTHENTICATED`) — or a sidecar does, and
//! `TRUST_FORWARDED_CLIENT_CERT=1` reads the caller's certificate from the
//! `x-forwarded-client-cert` header the sidecar sets.

use tessera_sdk::{Claims, RequireScopes, TokenClient, Verifier};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status};

use tessera_examples::pb;

struct Invoices;

#[tonic::async_trait]
impl pb::invoices_server::Invoices for Invoices {
    async fn get_invoice(&self, request: Request<pb::GetInvoiceRequest>) -> Result<Response<pb::Invoice>, Status> {
        // RequireScopes put the verified claims here; without them the call never arrives.
        let caller = request
            .extensions()
            .get::<Claims>()
            .map(|claims| claims.client_id.clone())
            .ok_or_else(|| Status::unauthenticated("no verified token"))?;
        let id = request.into_inner().id;
        Ok(Response::new(pb::Invoice {
            amount: format!("{}.00 EUR", 40 + id.len()),
            id,
            served_to: caller,
        }))
    }
}

fn setting(name: &str, default: Option<&str>) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .or(default.map(str::to_owned))
        .ok_or_else(|| format!("set {name} (see the top of examples/resource_service.rs)"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tessera = setting("TESSERA", None)?;
    let issuer = setting("ISSUER", Some(&tessera))?;
    let audience = setting("AUDIENCE", Some("https://invoices.internal"))?;
    let listen = setting("LISTEN", Some("127.0.0.1:50051"))?.parse()?;
    let mut builder = TokenClient::builder(&tessera);
    if let Ok(ca) = std::env::var("TESSERA_CA") {
        builder = builder.tls_ca_pem(std::fs::read(ca)?);
    }
    let client = match (std::env::var("CLIENT_ID"), std::env::var("CLIENT_SECRET")) {
        (Ok(id), Ok(secret)) => builder.client_secret(id, secret).build()?,
        _ => builder.build_keys_only()?,
    };
    // Keys up front: the first request is not slowed by a fetch, and a
    // Tessera that is down at start-up is reported at once.
    let jwks = client.jwks().await?;
    let verifier = Verifier::builder(client, issuer, audience).keys(&jwks).build();
    let mut require = RequireScopes::new(verifier, ["invoices:read"]);
    if std::env::var("TRUST_FORWARDED_CLIENT_CERT").is_ok_and(|v| v == "1") {
        require = require.trust_forwarded_client_cert();
    }
    let mut server = tonic::transport::Server::builder();
    let mut scheme = "http";
    if let (Ok(cert), Ok(key)) = (std::env::var("TLS_CERT"), std::env::var("TLS_KEY")) {
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?));
        if let Ok(ca) = std::env::var("TLS_CLIENT_CA") {
            tls = tls
                .client_ca_root(Certificate::from_pem(std::fs::read(ca)?))
                .client_auth_optional(true);
        }
        server = server.tls_config(tls)?;
        scheme = "https";
    }
    println!("invoices listening on {scheme}://{listen}; requires scope invoices:read");
    server
        .layer(require)
        .add_service(pb::invoices_server::InvoicesServer::new(Invoices))
        .serve(listen)
        .await?;
    Ok(())
}
