//! The core's behaviour, one test per rule, against a real SQLite store and
//! an injected clock.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::Value;

use super::*;
use crate::admin::{self, NewClient};
use crate::clock::ManualClock;
use crate::store::{SecretRecord, SqliteStore};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://tessera.test";

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    authority: Authority,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path().join("t.db")).await.unwrap());
    let clock = Arc::new(ManualClock::new(NOW));
    let config = AuthorityConfig {
        issuer: ISSUER.into(),
        default_token_ttl: 3600,
        max_token_ttl: 7200,
        signing_alg: KeyAlgorithm::Es256,
        hashing_permits: 2,
        hashing_wait: Duration::from_secs(5),
        key_rotation: None,
        key_publish_ahead: Duration::from_secs(600),
        throttle: ThrottleConfig::default(),
        require_audience: false,
        max_assertion_lifetime_secs: 3600,
        federation: Default::default(),
        client_certificates: false,
        custody: std::sync::Arc::new(crate::keys::KeyCustody::clear()),
    };
    let authority = Authority::new(config, store.clone(), clock.clone()).await.unwrap();
    Fixture {
        _dir: dir,
        store,
        clock,
        authority,
    }
}

impl Fixture {
    async fn client(&self, id: &str, scopes: &[&str], audiences: &[&str], ttl: Option<u32>) -> ClientSecret {
        let new = NewClient {
            client_id: id.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            audiences: audiences.iter().map(|s| s.to_string()).collect(),
            token_ttl: ttl,
            bind_to_certificate: false,
        };
        admin::create_client(self.store.as_ref(), new, NOW).await.unwrap()
    }

    async fn issue(&self, request: TokenRequest) -> Result<IssuedToken, AuthError> {
        self.authority.issue(request).await
    }

    fn claims(&self, token: &IssuedToken) -> Value {
        let ring = self.authority.key_ring();
        let mut validation = Validation::new(ring.signer(NOW).algorithm().jwt_algorithm());
        validation.validate_exp = false; // the manual clock is in the future
        validation.validate_aud = false;
        decode::<Value>(
            token.access_token.expose(),
            ring.signer(NOW).decoding_key(),
            &validation,
        )
        .unwrap()
        .claims
    }
}

fn post(id: &str, secret: &ClientSecret) -> TokenRequest {
    TokenRequest {
        grant_type: Some(CLIENT_CREDENTIALS.into()),
        credentials: PresentedCredentials {
            client_id: Some(id.into()),
            client_secret: Some(secret.clone()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn with_scopes(mut request: TokenRequest, scopes: &[&str]) -> TokenRequest {
    request.scopes = scopes.iter().map(|s| s.to_string()).collect();
    request
}

fn with_audiences(mut request: TokenRequest, audiences: &[&str]) -> TokenRequest {
    request.audiences = audiences.iter().map(|s| s.to_string()).collect();
    request
}

mod client_auth;
mod issuance;
mod resource_server;
