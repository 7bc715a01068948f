//! Signing keys at rest: envelope encryption under a key encryption key
//! (KEK) that lives outside the store.
//!
//! With a KEK, a private key is stored only as
//! `MAGIC || kek_id (8) || nonce (12) || AES-256-GCM(pkcs8) || tag (16)`,
//! the associated data naming the key's `kid` and algorithm, so a ciphertext
//! moved to another row does not decrypt. `kek_id` is a keyed hash of the KEK
//! (it reveals nothing about it) so that "no KEK" and "the wrong KEK" are told
//! apart from a tampered row, and each gets its own message. PKCS#8 DER always
//! starts with `0x30`, so a stored value in the clear is recognised as such.
//!
//! A running replica re-reads its KEK file when it meets a key sealed under
//! another KEK (after `tessera keys rewrap`), and never needs to decrypt a key
//! it holds already: see [`super::KeyRing::load`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::store::SigningKeyRecord;

/// Marks a sealed key; version 1 of the format.
const MAGIC: &[u8; 5] = b"TSKE\x01";
const KEK_ID_LEN: usize = 8;
const HEADER_LEN: usize = MAGIC.len() + KEK_ID_LEN + NONCE_LEN;
/// Length of a key encryption key: AES-256.
pub const KEK_LEN: usize = 32;

/// What the flag and the variable are called, for messages.
const KEK_FLAG: &str = "--key-encryption-key-file (or TESSERA_KEY_ENCRYPTION_KEY_FILE)";

/// A KEK's public name: the first 8 bytes of HMAC-SHA256(KEK, a fixed label), in hex.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KekId([u8; KEK_ID_LEN]);

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KekId({self})")
    }
}

/// A key encryption key, loaded.
pub struct Kek {
    key: RandomizedNonceKey,
    id: KekId,
}

impl fmt::Debug for Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kek").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Kek {
    /// A KEK from its 32 bytes.
    ///
    /// # Errors
    /// When `bytes` is not 32 bytes long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != KEK_LEN {
            return Err(format!("a key encryption key is {KEK_LEN} bytes, not {}", bytes.len()));
        }
        let key =
            RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| "AES-256-GCM key setup failed".to_owned())?;
        let label = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes);
        let tag = aws_lc_rs::hmac::sign(&label, b"tessera key encryption key id v1");
        let mut id = [0u8; KEK_ID_LEN];
        id.copy_from_slice(&tag.as_ref()[..KEK_ID_LEN]);
        Ok(Self { key, id: KekId(id) })
    }

    /// Reads a KEK file: exactly 32 bytes, or their base64 (standard or URL-safe,
    /// surrounding whitespace ignored), as `openssl rand 32` or
    /// `openssl rand -base64 32` write it. Refused when other users can read it.
    ///
    /// # Errors
    /// A message naming the file and what is wrong with it.
    pub fn read_file(path: &Path) -> Result<Self, String> {
        let what = "the key encryption key file";
        let contents =
            crate::private_files::read_private(path, what, "whoever reads it and the store can mint tokens")?;
        let bytes = if contents.len() == KEK_LEN {
            contents
        } else {
            let text = std::str::from_utf8(&contents).unwrap_or_default().trim();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map(Zeroizing::new)
                .ok()
                .filter(|d| d.len() == KEK_LEN);
            decoded.ok_or_else(|| {
                format!(
                    "{what} {} holds neither {KEK_LEN} bytes nor their base64; \
                     make one with `tessera keys generate-kek --out FILE`",
                    path.display()
                )
            })?
        };
        Self::from_bytes(&bytes)
    }

    /// This KEK's public name.
    pub fn id(&self) -> KekId {
        self.id
    }

    fn aad(record: &SigningKeyRecord) -> Vec<u8> {
        [
            b"tessera signing key\0",
            record.kid.as_bytes(),
            b"\0",
            record.alg.as_bytes(),
        ]
        .concat()
    }

    fn seal(&self, record: &SigningKeyRecord, pkcs8: &[u8]) -> Result<Vec<u8>, String> {
        let mut in_out = pkcs8.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(Self::aad(record)), &mut in_out)
            .map_err(|_| format!("encrypting signing key {:?} failed", record.kid))?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + in_out.len());
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&self.id.0);
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&in_out);
        Ok(sealed)
    }

    fn open(&self, record: &SigningKeyRecord, sealed: &Sealed<'_>) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        if sealed.kek_id != self.id {
            return Err(CustodyError::WrongKek {
                kid: record.kid.clone(),
                stored: sealed.kek_id,
                given: self.id,
            });
        }
        let mut in_out = Zeroizing::new(sealed.ciphertext.to_vec());
        let nonce = Nonce::assume_unique_for_key(sealed.nonce);
        let len = self
            .key
            .open_in_place(nonce, Aad::from(Self::aad(record)), &mut in_out)
            .map_err(|_| CustodyError::Tampered {
                kid: record.kid.clone(),
                kek: self.id,
            })?
            .len();
        in_out.truncate(len);
        Ok(in_out)
    }
}

/// A stored value in the sealed format, taken apart.
struct Sealed<'a> {
    kek_id: KekId,
    nonce: [u8; NONCE_LEN],
    ciphertext: &'a [u8],
}

impl<'a> Sealed<'a> {
    fn parse(stored: &'a [u8]) -> Option<Self> {
        let rest = stored.strip_prefix(MAGIC.as_slice())?;
        if rest.len() < KEK_ID_LEN + NONCE_LEN + AES_256_GCM.tag_len() {
            return None;
        }
        let (id, rest) = rest.split_at(KEK_ID_LEN);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Some(Self {
            kek_id: KekId(id.try_into().ok()?),
            nonce: nonce.try_into().ok()?,
            ciphertext,
        })
    }
}

/// The KEK a stored key is sealed under, or `None` for a key in the clear.
pub fn sealed_under(stored: &[u8]) -> Option<KekId> {
    Sealed::parse(stored).map(|s| s.kek_id)
}

/// Why a stored key could not be decrypted (or a key not encrypted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustodyError {
    /// The key is encrypted and this process was given no KEK.
    #[error(
        "signing key {kid:?} is stored encrypted (key encryption key {kek}) and no key encryption key was given: \
         give the file with {KEK_FLAG}"
    )]
    NoKek {
        /// The key.
        kid: String,
        /// The KEK it is sealed under.
        kek: KekId,
    },
    /// The key is encrypted under another KEK than this process's.
    #[error(
        "signing key {kid:?} is encrypted under key encryption key {stored}, but the key encryption key given is {given}: \
         give the file it was encrypted with (after `tessera keys rewrap`, the new one)"
    )]
    WrongKek {
        /// The key.
        kid: String,
        /// The KEK it is sealed under.
        stored: KekId,
        /// This process's KEK.
        given: KekId,
    },
    /// The ids match but the ciphertext does not authenticate.
    #[error(
        "signing key {kid:?} does not decrypt under key encryption key {kek}: its stored ciphertext was altered \
         or copied from another key"
    )]
    Tampered {
        /// The key.
        kid: String,
        /// The KEK tried.
        kek: KekId,
    },
    /// The KEK file changed and no longer reads.
    #[error("{0}")]
    File(String),
}

/// How this process keeps signing keys at rest: in the clear, or sealed
/// under a KEK read from a file (re-read when a key needs a newer one).
#[derive(Debug)]
pub struct KeyCustody {
    file: Option<PathBuf>,
    kek: ArcSwapOption<Kek>,
    /// A key in an HSM that signs instead of the stored ones.
    hsm: Option<Arc<super::SigningKey>>,
}

impl KeyCustody {
    /// Keys in the clear, as before KEKs existed.
    pub fn clear() -> Self {
        Self {
            file: None,
            kek: ArcSwapOption::empty(),
            hsm: None,
        }
    }

    /// Keys sealed under the KEK in `path`.
    ///
    /// # Errors
    /// When the file cannot be read, is shared with other users, or holds no KEK.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let kek = Kek::read_file(path)?;
        Ok(Self {
            file: Some(path.to_owned()),
            kek: ArcSwapOption::from_pointee(kek),
            hsm: None,
        })
    }

    /// Sealed under `kek`, with no file behind it (tests, `rewrap`).
    pub fn with_kek(kek: Kek) -> Self {
        Self {
            file: None,
            kek: ArcSwapOption::from_pointee(kek),
            hsm: None,
        }
    }

    /// `--key-encryption-key-file`, when given.
    ///
    /// # Errors
    /// As [`KeyCustody::from_file`].
    pub fn from_option(path: Option<&Path>) -> Result<Self, String> {
        path.map_or_else(|| Ok(Self::clear()), Self::from_file)
    }

    /// Signs with `key`, an HSM's, instead of the stored keys (which then
    /// only verify the tokens they signed, until those expire).
    #[must_use]
    pub fn with_hsm(mut self, key: super::SigningKey) -> Self {
        self.hsm = Some(Arc::new(key));
        self
    }

    /// The HSM's key, when one signs.
    pub fn hsm_key(&self) -> Option<&Arc<super::SigningKey>> {
        self.hsm.as_ref()
    }

    /// The KEK's id, when keys are sealed.
    pub fn kek_id(&self) -> Option<KekId> {
        self.kek.load().as_ref().map(|k| k.id)
    }

    /// Re-reads the KEK file, keeping the current KEK when it does not read.
    /// True when the KEK changed.
    pub fn reload(&self) -> Result<bool, String> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let kek = Kek::read_file(path)?;
        let changed = self.kek_id() != Some(kek.id);
        if changed {
            self.kek.store(Some(Arc::new(kek)));
        }
        Ok(changed)
    }

    /// `record` as it must be stored: its private key sealed under the KEK,
    /// or unchanged without one. A record sealed already is returned as is.
    ///
    /// # Errors
    /// Only if aws-lc fails.
    pub fn seal(&self, mut record: SigningKeyRecord) -> Result<SigningKeyRecord, String> {
        let Some(kek) = self.kek.load_full() else {
            return Ok(record);
        };
        if Sealed::parse(&record.private_pkcs8).is_none() {
            let sealed = kek.seal(&record, &record.private_pkcs8)?;
            record.private_pkcs8 = Zeroizing::new(sealed);
        }
        Ok(record)
    }

    /// The private key of a stored record, decrypted if it is sealed.
    ///
    /// # Errors
    /// Without the KEK it is sealed under, or when it does not authenticate.
    pub fn open(&self, record: &SigningKeyRecord) -> Result<Zeroizing<Vec<u8>>, CustodyError> {
        let Some(sealed) = Sealed::parse(&record.private_pkcs8) else {
            return Ok(record.private_pkcs8.clone());
        };
        match self.kek.load_full() {
            None => Err(CustodyError::NoKek {
                kid: record.kid.clone(),
                kek: sealed.kek_id,
            }),
            Some(kek) => match kek.open(record, &sealed) {
                // The file may have been replaced since (a rewrap): look again once.
                Err(CustodyError::WrongKek { .. }) if self.reload().map_err(CustodyError::File)? => self.open(record),
                other => other,
            },
        }
    }

    /// Checks that a new key written by this process will be readable by
    /// the others: refused when the store's keys are sealed under another
    /// KEK, or sealed while this process has none.
    ///
    /// # Errors
    /// The message says which KEK the store uses.
    pub fn check_matches(&self, stored: &[SigningKeyRecord]) -> Result<(), CustodyError> {
        let _ = self.reload();
        let ours = self.kek_id();
        for record in stored.iter().filter(|r| r.revoked_at.is_none()) {
            match (sealed_under(&record.private_pkcs8), ours) {
                (Some(kek), None) => {
                    return Err(CustodyError::NoKek {
                        kid: record.kid.clone(),
                        kek,
                    });
                }
                (Some(stored), Some(given)) if stored != given => {
                    return Err(CustodyError::WrongKek {
                        kid: record.kid.clone(),
                        stored,
                        given,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The changes that seal every stored key under this KEK: keys in the
    /// clear, and keys sealed under `previous` (a rewrap). Each change names
    /// the bytes it replaces, so it is applied only if nothing else did.
    ///
    /// # Errors
    /// When a key is sealed under a KEK that is neither this one nor `previous`.
    pub fn reseal_all(
        &self,
        stored: &[SigningKeyRecord],
        previous: &KeyCustody,
    ) -> Result<Vec<KeyMaterialChange>, CustodyError> {
        let Some(kek) = self.kek.load_full() else {
            return Ok(Vec::new());
        };
        let mut changes = Vec::new();
        for record in stored {
            if sealed_under(&record.private_pkcs8) == Some(kek.id) {
                continue;
            }
            let pkcs8 = previous.open(record)?;
            let sealed = kek.seal(record, &pkcs8).map_err(CustodyError::File)?;
            changes.push(KeyMaterialChange {
                kid: record.kid.clone(),
                from: record.private_pkcs8.clone(),
                to: Zeroizing::new(sealed),
            });
        }
        Ok(changes)
    }
}

/// One key's stored private material, replaced (compare and set).
#[derive(Clone)]
pub struct KeyMaterialChange {
    /// The key.
    pub kid: String,
    /// What the store must hold for the change to apply.
    pub from: Zeroizing<Vec<u8>>,
    /// What it holds afterwards.
    pub to: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for KeyMaterialChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyMaterialChange")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// 32 fresh random bytes.
///
/// # Errors
/// Only if the system's random source fails.
pub fn generate_kek() -> Result<Zeroizing<Vec<u8>>, String> {
    let mut bytes = Zeroizing::new(vec![0u8; KEK_LEN]);
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| "the system's random source failed".to_owned())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, SigningKey};

    fn kek(byte: u8) -> Kek {
        Kek::from_bytes(&[byte; KEK_LEN]).unwrap()
    }

    fn record() -> SigningKeyRecord {
        SigningKey::generate(KeyAlgorithm::Es256, 1).unwrap()
    }

    #[test]
    fn a_sealed_key_opens_to_the_same_pkcs8_and_holds_none_of_it() {
        let custody = KeyCustody::with_kek(kek(1));
        let clear = record();
        let sealed = custody.seal(clear.clone()).unwrap();
        assert_eq!(sealed_under(&sealed.private_pkcs8), custody.kek_id());
        assert!(
            !sealed
                .private_pkcs8
                .windows(16)
                .any(|w| clear.private_pkcs8.windows(16).any(|c| c == w)),
            "no 16-byte run of the key survives sealing"
        );
        assert_eq!(*custody.open(&sealed).unwrap(), *clear.private_pkcs8);
    }

    #[test]
    fn without_the_kek_a_sealed_key_is_refused_saying_so() {
        let sealed = KeyCustody::with_kek(kek(1)).seal(record()).unwrap();
        let err = KeyCustody::clear().open(&sealed).unwrap_err();
        assert!(matches!(err, CustodyError::NoKek { .. }), "{err}");
        assert!(err.to_string().contains("--key-encryption-key-file"), "{err}");
    }

    #[test]
    fn under_the_wrong_kek_a_sealed_key_is_refused_naming_both() {
        let sealed = KeyCustody::with_kek(kek(1)).seal(record()).unwrap();
        let err = KeyCustody::with_kek(kek(2)).open(&sealed).unwrap_err();
        let message = err.to_string();
        assert!(message.contains(&kek(1).id().to_string()), "{message}");
        assert!(message.contains(&kek(2).id().to_string()), "{message}");
    }

    #[test]
    fn a_ciphertext_moved_to_another_key_does_not_decrypt() {
        let custody = KeyCustody::with_kek(kek(1));
        let first = custody.seal(record()).unwrap();
        let mut second = custody.seal(record()).unwrap();
        second.private_pkcs8 = first.private_pkcs8.clone();
        let err = custody.open(&second).unwrap_err();
        assert!(matches!(err, CustodyError::Tampered { .. }), "{err}");
    }

    #[test]
    fn resealing_moves_clear_and_old_keys_to_the_new_kek() {
        let old = KeyCustody::with_kek(kek(1));
        let new = KeyCustody::with_kek(kek(2));
        let stored = [record(), old.seal(record()).unwrap()];
        let changes = new.reseal_all(&stored, &old).unwrap();
        assert_eq!(changes.len(), 2);
        for (change, record) in changes.iter().zip(&stored) {
            let mut moved = record.clone();
            moved.private_pkcs8 = change.to.clone();
            assert_eq!(sealed_under(&moved.private_pkcs8), new.kek_id());
            assert_eq!(*new.open(&moved).unwrap(), *old.open(record).unwrap());
        }
    }

    #[test]
    fn a_kek_file_reads_as_raw_bytes_or_base64_and_only_if_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        crate::private_files::write_new(&raw, &[7; KEK_LEN]).unwrap();
        let text = dir.path().join("text");
        let encoded = base64::engine::general_purpose::STANDARD.encode([7; KEK_LEN]);
        crate::private_files::write_new(&text, format!("{encoded}\n").as_bytes()).unwrap();
        assert_eq!(Kek::read_file(&raw).unwrap().id(), Kek::read_file(&text).unwrap().id());
        std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Kek::read_file(&raw).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
        let short = dir.path().join("short");
        crate::private_files::write_new(&short, b"too short").unwrap();
        assert!(Kek::read_file(&short).unwrap_err().contains("generate-kek"));
    }
}
