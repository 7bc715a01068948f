//! Gets a token from Tessera over gRPC and prints what it grants.
//!
//! ```text
//! cargo run -p tessera-examples --example issue_token -- http://127.0.0.1:8080 demo SECRET [SCOPE…]
//! ```

use tessera_sdk::{TokenClient, TokenRequest};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: issue_token ENDPOINT CLIENT_ID CLIENT_SECRET [SCOPE…]";
    let endpoint = args.next().ok_or(usage)?;
    let client_id = args.next().ok_or(usage)?;
    let secret = args.next().ok_or(usage)?;
    let request = args.fold(TokenRequest::new(), TokenRequest::scope);

    let client = TokenClient::builder(endpoint)
        .client_secret(client_id, secret)
        .build()?;
    let token = client.issue_token(&request).await?;
    println!("scopes:     {}", token.scopes().join(" "));
    println!("audiences:  {}", token.audiences().join(" "));
    println!("expires_in: {} s", token.expires_in().as_secs());
    // Printed because this example exists to show you the token; services never print theirs.
    println!("access_token: {}", token.access_token().expose());
    Ok(())
}
