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
//! client, for fetching keys), `LISTEN` (default `127.0.0.1:50051`),
//! `AUDIENCE` (default `https://invoices.internal`).

use tessera_sdk::{Claims, RequireScopes, TokenClient, Verifier};
use tonic::{Request, Response, Status};

mod pb {
    tonic::include_proto!("example.v1");
}

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
    let client = TokenClient::builder(&tessera)
        .client_secret(setting("CLIENT_ID", None)?, setting("CLIENT_SECRET", None)?)
        .build()?;
    // Keys up front: the first request is not slowed by a fetch, and a
    // Tessera that is down at start-up is reported at once.
    let jwks = client.jwks().await?;
    let verifier = Verifier::builder(client, issuer, audience).keys(&jwks).build();
    println!("invoices listening on {listen}; requires scope invoices:read");
    tonic::transport::Server::builder()
        .layer(RequireScopes::new(verifier, ["invoices:read"]))
        .add_service(pb::invoices_server::InvoicesServer::new(Invoices))
        .serve(listen)
        .await?;
    Ok(())
}
