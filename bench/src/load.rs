//! The load generator: a fixed number of concurrent callers over a fixed
//! number of HTTP/2 connections, for a fixed time, recording latencies.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tessera_proto::pb;
use tessera_proto::pb::token_service_client::TokenServiceClient;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

/// Said by a call whose scenario has nothing left to use (each cold client
/// and each never-seen token serves once).
const POOL_USED_UP: &str = "pool used up";

/// One kind of call.
#[derive(Clone)]
pub enum Call {
    /// IssueToken with one client's secret (warm after the first call).
    Issue { client_id: String, secret: String },
    /// IssueToken with client assertions from a pool, round robin: a pool
    /// of one is a platform token reused, as a workload reuses it; with
    /// `once`, each at most once (never-seen tokens), and an error when the
    /// pool runs out.
    IssueWithAssertions {
        client_id: String,
        assertion_type: &'static str,
        pool: Arc<Vec<String>>,
        next: Arc<AtomicUsize>,
        once: bool,
    },
    /// IssueToken with a different client each time (argon2 every call).
    IssueCold {
        clients: Arc<Vec<(String, String)>>,
        next: Arc<AtomicUsize>,
    },
    /// IssueToken with a wrong secret for a random client id (refused).
    WrongSecret,
    /// IssueToken with a wrong secret for a registered client (refused by
    /// its check value, before argon2).
    WrongSecretFor {
        /// The registered client's id.
        client_id: String,
    },
    /// IntrospectToken over a pool of tokens, round robin.
    /// With `once`, each token at most once (never-seen tokens), and an
    /// error when the pool runs out.
    Introspect {
        pool: Arc<Vec<String>>,
        authorization: MetadataValue<tonic::metadata::Ascii>,
        next: Arc<AtomicUsize>,
        once: bool,
    },
    /// IssueToken with `client_id` alone: the connection's client
    /// certificate authenticates (RFC 8705 `tls_client_auth`).
    IssueByCertificate { client_id: String },
    /// As [`Call::IssueByCertificate`], each call on a new connection made
    /// through `endpoint` (its TLS handshake included), closed after it.
    IssueByCertificateNewConnection {
        client_id: String,
        endpoint: Box<tonic::transport::Endpoint>,
    },
    /// RevokeToken over a pool of tokens, each once (an acknowledged,
    /// durable write per call), with the owner's credentials.
    Revoke {
        pool: Arc<Vec<String>>,
        authorization: MetadataValue<tonic::metadata::Ascii>,
        next: Arc<AtomicUsize>,
    },
}

fn secret_request(client_id: &str, secret: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        grant_type: String::new(),
        client_id: client_id.to_owned(),
        credential: Some(pb::issue_token_request::Credential::ClientSecret(secret.to_owned())),
        scopes: vec![],
        audiences: vec![],
    }
}

fn assertion_request(client_id: &str, assertion_type: &str, assertion: String) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        grant_type: String::new(),
        client_id: client_id.to_owned(),
        credential: Some(pb::issue_token_request::Credential::ClientAssertion(
            pb::ClientAssertion {
                assertion_type: assertion_type.to_owned(),
                assertion,
            },
        )),
        scopes: vec![],
        audiences: vec![],
    }
}

fn certificate_request(client_id: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        client_id: client_id.to_owned(),
        ..Default::default()
    }
}

impl Call {
    /// Makes one call; a refusal the scenario expects counts as success.
    async fn once(&self, client: &mut TokenServiceClient<Channel>) -> Result<(), tonic::Status> {
        match self {
            Call::Issue { client_id, secret } => client.issue_token(secret_request(client_id, secret)).await.map(drop),
            Call::IssueWithAssertions {
                client_id,
                assertion_type,
                pool,
                next,
                once,
            } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if *once && i >= pool.len() {
                    return Err(tonic::Status::resource_exhausted(POOL_USED_UP));
                }
                let request = assertion_request(client_id, assertion_type, pool[i % pool.len()].clone());
                client.issue_token(request).await.map(drop)
            }
            Call::IssueByCertificate { client_id } => {
                client.issue_token(certificate_request(client_id)).await.map(drop)
            }
            Call::IssueByCertificateNewConnection { client_id, endpoint } => {
                let channel = endpoint
                    .connect()
                    .await
                    .map_err(|e| tonic::Status::unavailable(format!("connecting: {e}")))?;
                TokenServiceClient::new(channel)
                    .issue_token(certificate_request(client_id))
                    .await
                    .map(drop)
            }
            Call::IssueCold { clients, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (id, secret) = clients
                    .get(i)
                    .ok_or_else(|| tonic::Status::resource_exhausted(POOL_USED_UP))?;
                client.issue_token(secret_request(id, secret)).await.map(drop)
            }
            Call::WrongSecret => {
                let id = format!("flood-{}", next_random());
                match client.issue_token(secret_request(&id, "wrong")).await {
                    Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(()),
                    other => other.map(drop),
                }
            }
            Call::WrongSecretFor { client_id } => {
                let wrong = format!("wrong-{}", next_random());
                match client.issue_token(secret_request(client_id, &wrong)).await {
                    Err(status) if status.code() == tonic::Code::Unauthenticated => Ok(()),
                    other => other.map(drop),
                }
            }
            Call::Introspect {
                pool,
                authorization,
                next,
                once,
            } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if *once && i >= pool.len() {
                    return Err(tonic::Status::resource_exhausted(POOL_USED_UP));
                }
                let token = &pool[i % pool.len()];
                let mut request = tonic::Request::new(pb::IntrospectTokenRequest {
                    token: token.clone(),
                    token_type_hint: String::new(),
                });
                request.metadata_mut().insert("authorization", authorization.clone());
                let answer = client.introspect_token(request).await?;
                if answer.get_ref().active {
                    Ok(())
                } else {
                    Err(tonic::Status::internal("token inactive"))
                }
            }
            Call::Revoke {
                pool,
                authorization,
                next,
            } => {
                let token = pool
                    .get(next.fetch_add(1, Ordering::Relaxed))
                    .ok_or_else(|| tonic::Status::resource_exhausted(POOL_USED_UP))?;
                let mut request = tonic::Request::new(pb::RevokeTokenRequest {
                    token: token.clone(),
                    token_type_hint: String::new(),
                });
                request.metadata_mut().insert("authorization", authorization.clone());
                client.revoke_token(request).await.map(drop)
            }
        }
    }
}

fn next_random() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// What a load phase measured.
#[derive(Debug, Clone)]
pub struct Stats {
    pub ok: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
    pub first_error: Option<String>,
}

impl Stats {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Opens `connections` HTTP/2 connections to `url`.
pub async fn connect(url: &str, connections: usize) -> Result<Vec<TokenServiceClient<Channel>>, String> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned()).map_err(|e| e.to_string())?;
    connect_to(&endpoint, connections).await
}

/// Opens `connections` HTTP/2 connections through `endpoint` (with its TLS settings).
pub async fn connect_to(
    endpoint: &tonic::transport::Endpoint,
    connections: usize,
) -> Result<Vec<TokenServiceClient<Channel>>, String> {
    let url = endpoint.uri().to_string();
    let mut clients = Vec::new();
    for _ in 0..connections.max(1) {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connecting to {url}: {e}"))?;
        clients.push(TokenServiceClient::new(channel).max_decoding_message_size(64 * 1024));
    }
    Ok(clients)
}

/// Runs `call` from `concurrency` callers for `duration` (and at most
/// `max_calls` calls), after `warmup` unrecorded.
pub async fn drive(
    clients: &[TokenServiceClient<Channel>],
    call: Call,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    max_calls: u64,
) -> Stats {
    let warm_until = Instant::now() + warmup;
    let issued = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for worker in 0..concurrency.max(1) {
        let mut client = clients[worker % clients.len()].clone();
        let call = call.clone();
        let issued = issued.clone();
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
            while Instant::now() < warm_until {
                if let Err(status) = call.once(&mut client).await
                    && status.message() == POOL_USED_UP
                {
                    break;
                }
            }
            let end = Instant::now() + duration;
            while Instant::now() < end && issued.fetch_add(1, Ordering::Relaxed) < max_calls {
                let start = Instant::now();
                match call.once(&mut client).await {
                    Ok(()) => {
                        ok += 1;
                        let _ = histogram.record(start.elapsed().as_micros() as u64);
                    }
                    // The scenario's supply ran out: this caller is done, not failed.
                    Err(status) if status.message() == POOL_USED_UP => break,
                    Err(status) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{:?}: {}", status.code(), status.message()));
                    }
                }
            }
            (ok, errors, histogram, first_error)
        }));
    }
    let mut stats = Stats {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency_us: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
        first_error: None,
    };
    for task in tasks {
        if let Ok((ok, errors, histogram, first_error)) = task.await {
            stats.ok += ok;
            stats.errors += errors;
            let _ = stats.latency_us.add(&histogram);
            if stats.first_error.is_none() {
                stats.first_error = first_error;
            }
        }
    }
    // From the end of the warm-up to the last completed call.
    stats.elapsed = Instant::now().saturating_duration_since(warm_until);
    stats
}
