//! Least privilege: which scopes and audiences a client gets.
//!
//! A client is registered with the scopes and audiences it may hold. A request
//! may narrow them, never widen them; a request that names none gets all the
//! client holds (its defaults). A client registered without audiences gets
//! tokens for Tessera itself (`aud` = the issuer), never an empty or wildcard
//! `aud`.

use super::AuthError;
use super::error::echo;
use crate::store::ClientRecord;
use tessera_proto::confirmation::Confirmation;

pub use tessera_proto::limits::{MAX_AUDIENCE_LEN, MAX_AUDIENCES, MAX_SCOPE_LEN, MAX_SCOPES};

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, i.e. visible
/// ASCII except `"` and `\`.
pub fn is_valid_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope.len() <= MAX_SCOPE_LEN
        && scope.bytes().all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// An audience is a non-empty identifier or URI of visible ASCII, no spaces.
pub fn is_valid_audience(audience: &str) -> bool {
    !audience.is_empty() && audience.len() <= MAX_AUDIENCE_LEN && audience.bytes().all(|b| (0x21..=0x7E).contains(&b))
}

/// Checks the shape of requested scopes and removes duplicates (`scope=a a`
/// asks for `a` once), keeping the order of first appearance.
pub(super) fn parse_requested_scopes(requested: &[String]) -> Result<Vec<String>, AuthError> {
    if requested.len() > MAX_SCOPES {
        return Err(AuthError::invalid_request(format!(
            "too many scopes requested (at most {MAX_SCOPES})"
        )));
    }
    let mut scopes: Vec<String> = Vec::with_capacity(requested.len());
    for scope in requested {
        if !is_valid_scope_token(scope) {
            return Err(AuthError::InvalidScope(
                format!(
                    "scope {} is malformed: a scope token is 1 to {MAX_SCOPE_LEN} visible ASCII characters other than double quote and backslash (RFC 6749 section 3.3)",
                    echo(scope)
                )
                .into(),
            ));
        }
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    Ok(scopes)
}

/// Checks the shape of requested audiences and removes duplicates.
pub(super) fn parse_requested_audiences(requested: &[String]) -> Result<Vec<String>, AuthError> {
    if requested.len() > MAX_AUDIENCES {
        return Err(AuthError::invalid_request(format!(
            "too many audiences requested (at most {MAX_AUDIENCES})"
        )));
    }
    let mut audiences: Vec<String> = Vec::with_capacity(requested.len());
    for audience in requested {
        if !is_valid_audience(audience) {
            return Err(AuthError::InvalidTarget(
                format!(
                    "audience {} is malformed: use 1 to {MAX_AUDIENCE_LEN} visible ASCII characters, no spaces",
                    echo(audience)
                )
                .into(),
            ));
        }
        if !audiences.contains(audience) {
            audiences.push(audience.clone());
        }
    }
    Ok(audiences)
}

/// The scopes to grant: the requested ones if the client holds them all,
/// else `invalid_scope`; the client's own when none were requested.
pub(super) fn grant_scopes(client: &ClientRecord, requested: Vec<String>) -> Result<Vec<String>, AuthError> {
    if requested.is_empty() {
        return Ok(client.scopes.clone());
    }
    // Exact, case-sensitive comparison: `Read` or `read:all` do not match `read`.
    if let Some(extra) = requested.iter().find(|s| !client.scopes.contains(s)) {
        return Err(AuthError::InvalidScope(
            format!("scope {} is not allowed for this client", echo(extra)).into(),
        ));
    }
    Ok(requested)
}

/// The audiences to grant, likewise; a client with no registered audience
/// gets the issuer itself.
pub(super) fn grant_audiences(
    client: &ClientRecord,
    requested: Vec<String>,
    issuer: &str,
) -> Result<Vec<String>, AuthError> {
    if requested.is_empty() {
        if client.audiences.is_empty() {
            return Ok(vec![issuer.to_owned()]);
        }
        return Ok(client.audiences.clone());
    }
    if let Some(extra) = requested.iter().find(|a| !client.audiences.contains(a)) {
        return Err(AuthError::InvalidTarget(
            format!(
                "audience {} is not allowed for this client (RFC 8707 section 2)",
                echo(extra)
            )
            .into(),
        ));
    }
    Ok(requested)
}

/// The certificate a token is bound to (RFC 8705 section 3): the
/// connection's, when the client authenticated by it or asked for its
/// tokens to be bound (`--bind-to-certificate`). A client that asked for
/// binding gets no unbound token: without a certificate on the connection
/// its request is refused.
pub(super) fn confirmation(
    client: &ClientRecord,
    by_certificate: bool,
    certificate: Option<&crate::tls::PeerCertificate>,
) -> Result<Option<Confirmation>, AuthError> {
    if !by_certificate && !client.bind_to_certificate {
        return Ok(None);
    }
    match certificate {
        Some(certificate) => Ok(Some(Confirmation::x5t_s256(certificate.thumbprint()))),
        None => Err(AuthError::invalid_request(
            "this client's tokens are bound to its TLS client certificate (RFC 8705 section 3); connect with the client certificate",
        )),
    }
}
