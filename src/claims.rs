//! The claims of a Tessera access token (RFC 9068 section 2.2), and the time
//! checks every verifier applies: the server's introspection and the SDK's
//! `Verifier` use this one type, so they cannot disagree on what is valid.

use serde::{Deserialize, Serialize};

/// The claims Tessera signs into every access token.
///
/// Time claims are integers: a token whose `exp` is a string or a float fails
/// to deserialise and is not valid (see docs/THREATS.md, row C-10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// `iss`: the issuer.
    pub iss: String,
    /// `sub`: the client id, for client-credentials tokens.
    pub sub: String,
    /// `client_id` (RFC 9068 section 2.2).
    pub client_id: String,
    /// `aud`: a string when there is one audience (what most verifiers
    /// expect), an array otherwise (RFC 7519 section 4.1.3).
    #[serde(with = "one_or_many")]
    pub aud: Vec<String>,
    /// `scope`: space-separated; absent when no scope was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// `exp`, seconds since the Unix epoch.
    pub exp: i64,
    /// `iat`, seconds since the Unix epoch.
    pub iat: i64,
    /// `nbf`, seconds since the Unix epoch.
    pub nbf: i64,
    /// `jti`: unique per token; what revocation records.
    pub jti: String,
    /// `cnf`: the certificate the token is bound to (RFC 8705 section 3);
    /// absent for a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<crate::confirmation::Confirmation>,
}

/// Why a token's times do not hold now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// `now >= exp`.
    Expired,
    /// `nbf` or `iat` is later than now, beyond the leeway.
    NotYetValid,
}

/// The claims `jsonwebtoken` must find before a signature counts.
pub const REQUIRED_CLAIMS: [&str; 5] = ["exp", "nbf", "iss", "sub", "aud"];

impl AccessTokenClaims {
    /// The granted scopes, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.scope
            .as_deref()
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Checks `nbf <= now < exp` and that `iat` is not in the future. The
    /// `leeway` (seconds) is granted on the start times only, for clock
    /// differences between replicas; `exp` is exact, so a token is never
    /// honoured past its end.
    pub fn check_times(&self, now: i64, leeway: i64) -> Result<(), TimeError> {
        check_times(self.exp, self.nbf, self.iat, now, leeway)
    }
}

/// [`AccessTokenClaims::check_times`] on the three times alone, for a
/// verifier that kept them from an earlier look at the token.
pub fn check_times(exp: i64, nbf: i64, iat: i64, now: i64, leeway: i64) -> Result<(), TimeError> {
    if now >= exp {
        return Err(TimeError::Expired);
    }
    if nbf > now + leeway || iat > now + leeway {
        return Err(TimeError::NotYetValid);
    }
    Ok(())
}

mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(values: &[String], serializer: S) -> Result<S::Ok, S::Error> {
        match values {
            [one] => one.serialize(serializer),
            many => many.serialize(serializer),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: &[&str]) -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://tessera.test".into(),
            sub: "svc".into(),
            client_id: "svc".into(),
            aud: aud.iter().map(|a| (*a).to_owned()).collect(),
            scope: Some("a b".into()),
            exp: 200,
            iat: 100,
            nbf: 100,
            jti: "j".into(),
            cnf: None,
        }
    }

    #[test]
    fn one_audience_is_a_string_and_several_an_array_rfc7519_4_1_3() {
        let one = serde_json::to_value(claims(&["x"])).expect("serialises");
        assert_eq!(one["aud"], "x");
        let two = serde_json::to_value(claims(&["x", "y"])).expect("serialises");
        assert_eq!(two["aud"], serde_json::json!(["x", "y"]));
        let back: AccessTokenClaims = serde_json::from_value(one).expect("parses");
        assert_eq!(back.aud, vec!["x"]);
    }

    #[test]
    fn a_time_claim_of_another_json_type_does_not_parse() {
        let mut value = serde_json::to_value(claims(&["x"])).expect("serialises");
        value["exp"] = serde_json::json!("200");
        assert!(serde_json::from_value::<AccessTokenClaims>(value.clone()).is_err());
        value["exp"] = serde_json::json!(200.5);
        assert!(serde_json::from_value::<AccessTokenClaims>(value).is_err());
    }

    #[test]
    fn times_hold_from_nbf_until_just_before_exp() {
        let c = claims(&["x"]);
        assert_eq!(c.check_times(99, 0), Err(TimeError::NotYetValid));
        assert_eq!(c.check_times(95, 5), Ok(()));
        assert_eq!(c.check_times(199, 5), Ok(()));
        assert_eq!(c.check_times(200, 5), Err(TimeError::Expired));
    }

    #[test]
    fn an_iat_in_the_future_is_not_yet_valid() {
        let mut c = claims(&["x"]);
        c.iat = 150;
        assert_eq!(c.check_times(120, 5), Err(TimeError::NotYetValid));
    }
}
