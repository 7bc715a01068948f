//! The memory of verified secrets: a secret that verified once is remembered
//! as a keyed MAC, so the next request with the same secret costs a MAC
//! instead of argon2.

use dashmap::DashMap;

use crate::authority::secret::{ClientSecret, random_bytes};
use crate::clock::UnixTime;
use crate::store::ClientRecord;

/// Remembered verifications kept at most, over all clients; past it the
/// memory starts afresh (clients that churn cannot grow it without bound).
const MAX_REMEMBERED_CLIENTS: usize = 100_000;

/// A client holds a handful of live secrets; more entries are stale.
const MAX_PER_CLIENT: usize = 8;

/// One remembered verification.
#[derive(Clone)]
struct Remembered {
    mac: [u8; 32],
    /// Which of the client's secrets it matched: the memory counts only while
    /// the client's current record still holds that secret, live.
    secret_id: String,
}

/// Remembered successful verifications, per client id. Each is checked
/// against the client's current record, so a rotation, disable or delete
/// ends it, while a change to another client leaves it be: a busy registry
/// does not send every warm client back to argon2.
pub(super) struct VerificationMemory {
    remembered: DashMap<String, Vec<Remembered>>,
    /// Per-process random key of the MACs: a memory dump does not give an
    /// offline oracle for secrets across restarts.
    mac_key: aws_lc_rs::hmac::Key,
}

impl VerificationMemory {
    pub(super) fn new() -> Self {
        Self {
            remembered: DashMap::new(),
            mac_key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &random_bytes::<32>()),
        }
    }

    /// HMAC-SHA256 of the client id and secret under the per-process key.
    pub(super) fn mac(&self, client_id: &str, secret: &ClientSecret) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.mac_key);
        ctx.update(&(client_id.len() as u64).to_be_bytes());
        ctx.update(client_id.as_bytes());
        ctx.update(secret.expose().as_bytes());
        let mut mac = [0u8; 32];
        mac.copy_from_slice(ctx.sign().as_ref());
        mac
    }

    /// True when `mac` matches a remembered verification of one of the
    /// client's secrets that is still in its current record, live. Every
    /// entry is compared, in constant time.
    pub(super) fn recalls(&self, client: &ClientRecord, mac: &[u8; 32], now: UnixTime) -> bool {
        use subtle::ConstantTimeEq as _;
        let Some(entries) = self.remembered.get(&client.client_id) else {
            return false;
        };
        entries.iter().fold(false, |found, entry| {
            let live = client
                .secrets
                .iter()
                .any(|s| s.secret_id == entry.secret_id && s.is_live(now));
            found | (bool::from(entry.mac.ct_eq(mac)) & live)
        })
    }

    /// Remembers that `mac` verified as the client's secret `secret_id`.
    pub(super) fn remember(&self, client_id: &str, mac: [u8; 32], secret_id: &str) {
        if self.remembered.len() >= MAX_REMEMBERED_CLIENTS {
            self.remembered.clear();
        }
        let mut entries = self.remembered.entry(client_id.to_owned()).or_default();
        if !entries.iter().any(|e| e.mac == mac) {
            if entries.len() == MAX_PER_CLIENT {
                entries.remove(0);
            }
            entries.push(Remembered {
                mac,
                secret_id: secret_id.to_owned(),
            });
        }
    }

    /// Remembered verifications, over all clients.
    pub(super) fn count(&self) -> usize {
        self.remembered.iter().map(|e| e.len()).sum()
    }
}
