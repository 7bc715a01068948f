//! `tessera apply -f FILE` and `tessera export`: clients as code. A YAML
//! file names the clients that should exist and their settings; `apply`
//! prints the plan (create, update, unchanged, delete) and carries it out,
//! through the store (`--store`) or a server's admin API (`--server`).
//! `export` writes the current clients in the same format, so that
//! `export` then `apply` changes nothing.
//!
//! A client's top-level settings are declarative: what the file leaves out
//! takes its default (no audiences, the server's token lifetime, enabled).
//! Its credential lists (`keys`, `federated_identities`, `certificates`) are
//! managed only when present: a list given is made exact, a list left out is
//! left alone. Secrets are never in the file.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use clap::Args;
use serde::{Deserialize, Serialize};
use tessera_proto::admin::v1 as pb;

use super::CliError;
use super::target::{Admin, TargetArg};
use crate::admin::{self, KeyMaterial};
use crate::config::LogFormat;
use crate::logging;
use crate::store::CertificateMatch;

/// `tessera apply`.
#[derive(Debug, Args)]
pub(super) struct Apply {
    /// The YAML file of clients (`clients: [{id, scopes, audiences, token_ttl, disabled, …}]`)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// Print the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Delete the clients the file does not name (never without this flag)
    #[arg(long)]
    prune: bool,
    /// Write the secrets of clients created to this new file (JSON, mode 0600) instead of standard output
    #[arg(long, value_name = "FILE")]
    secrets_out: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArg,
}

/// `tessera export`.
#[derive(Debug, Args)]
pub(super) struct Export {
    #[command(flatten)]
    target: TargetArg,
}

/// The file: the clients that should exist.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientsFile {
    clients: Vec<ClientSpec>,
}

/// One client as the file declares it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct ClientSpec {
    id: String,
    scopes: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_ttl: Option<u32>,
    #[serde(default, skip_serializing_if = "is_false")]
    disabled: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    bind_to_certificate: bool,
    /// Whether a client created by `apply` gets a secret (default: yes).
    /// Ignored for a client that exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<KeySpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    federated_identities: Option<Vec<FederatedSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    certificates: Option<Vec<CertificateEntry>>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A public key for `private_key_jwt`: a JWK, written as a mapping.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct KeySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    jwk: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
struct FederatedSpec {
    issuer: String,
    subject: String,
}

/// One certificate registration: exactly one of the five.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct CertificateEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    san_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    san_dns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject_dn: Option<String>,
    /// A PEM certificate, registered by its thumbprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pem: Option<String>,
    /// A certificate's SHA-256 thumbprint, as `export` writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    self_signed: Option<String>,
}

impl CertificateEntry {
    /// The registration as the admin API takes it.
    fn request(&self, client_id: &str) -> pb::ClientCertificateRequest {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        pb::ClientCertificateRequest {
            client_id: client_id.to_owned(),
            san_uri: text(&self.san_uri),
            san_dns: text(&self.san_dns),
            subject_dn: text(&self.subject_dn),
            pem: text(&self.pem),
            self_signed: text(&self.self_signed),
        }
    }

    /// The entry that names `matcher` as it is stored.
    fn from_match(matcher: &CertificateMatch) -> Self {
        let value = Some(matcher.value().to_owned());
        match matcher {
            CertificateMatch::SanUri(_) => Self {
                san_uri: value,
                ..Self::default()
            },
            CertificateMatch::SanDns(_) => Self {
                san_dns: value,
                ..Self::default()
            },
            CertificateMatch::SubjectDn(_) => Self {
                subject_dn: value,
                ..Self::default()
            },
            CertificateMatch::Thumbprint(_) => Self {
                self_signed: value,
                ..Self::default()
            },
        }
    }
}

/// A client as it should be, checked and in the stored forms.
#[derive(Debug, Clone)]
struct Desired {
    spec: ClientSpec,
    /// kid → (alg, JWK text), as the store keeps them.
    keys: Option<BTreeMap<String, (String, String)>>,
    certificates: Option<Vec<CertificateMatch>>,
}

/// Reads and checks the whole file; the first problem refuses it, with its line.
fn read_file(path: &Path) -> Result<Vec<Desired>, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display())))?;
    let file: ClientsFile = serde_yaml_ng::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map_or_else(String::new, |l| format!("line {}, column {}: ", l.line(), l.column()));
        CliError::failed(format!("{}: {at}{e}; nothing was changed", path.display()))
    })?;
    let mut seen = HashSet::new();
    let mut desired = Vec::with_capacity(file.clients.len());
    for (index, spec) in file.clients.into_iter().enumerate() {
        let line = line_of(&text, &spec.id).map_or_else(|| format!("client #{}", index + 1), |l| format!("line {l}"));
        let refuse = |why: String| {
            CliError::failed(format!(
                "{}: {line}: client {:?}: {why}; nothing was changed",
                path.display(),
                spec.id
            ))
        };
        if !seen.insert(spec.id.clone()) {
            return Err(refuse("named twice".into()));
        }
        desired.push(check(spec.clone()).map_err(refuse)?);
    }
    Ok(desired)
}

/// The line (1-based) where `id: <id>` is written, to point at a client.
fn line_of(text: &str, id: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches('-').trim_start();
            line.strip_prefix("id:")
                .map(|value| value.split(" #").next().unwrap_or("").trim().trim_matches(['"', '\'']) == id)
                .unwrap_or(false)
        })
        .map(|at| at + 1)
}

/// Checks one client as the server would, so that a bad file changes nothing.
fn check(mut spec: ClientSpec) -> Result<Desired, String> {
    // As the store keeps them: each once, in the order first written.
    spec.scopes = admin::first_of_each(spec.scopes);
    spec.audiences = admin::first_of_each(spec.audiences);
    admin::check_new_client_id(&spec.id).map_err(|e| e.to_string())?;
    admin::check_scopes(&spec.scopes).map_err(|e| e.to_string())?;
    admin::check_audiences(&spec.audiences).map_err(|e| e.to_string())?;
    admin::check_token_ttl(spec.token_ttl).map_err(|e| e.to_string())?;
    let keys = spec
        .keys
        .as_ref()
        .map(|keys| {
            let mut checked = BTreeMap::new();
            for key in keys {
                let record = admin::client_key_record(KeyMaterial::Jwk(key.jwk.to_string()), key.kid.clone(), None, 0)?;
                if checked.insert(record.kid.clone(), (record.alg, record.jwk)).is_some() {
                    return Err(format!("key {:?} is named twice", record.kid));
                }
            }
            Ok(checked)
        })
        .transpose()?;
    if let Some(identities) = &spec.federated_identities {
        let unique: HashSet<_> = identities.iter().collect();
        if unique.len() != identities.len() {
            return Err("a federated identity is named twice".into());
        }
    }
    let certificates = spec
        .certificates
        .as_ref()
        .map(|entries| {
            let mut matches: Vec<CertificateMatch> = Vec::new();
            for entry in entries {
                let (_, spec) = admin::api::certificate_spec(entry.request("")).map_err(|e| e.to_string())?;
                let matcher = spec.to_match().map_err(|e| e.to_string())?;
                if matches.contains(&matcher) {
                    return Err(format!("certificate {matcher} is named twice"));
                }
                matches.push(matcher);
            }
            Ok(matches)
        })
        .transpose()?;
    Ok(Desired {
        spec,
        keys,
        certificates,
    })
}

/// What changes for one client.
#[derive(Debug, Default)]
struct Changes {
    update: Option<pb::UpdateClientRequest>,
    disabled: Option<bool>,
    keys_added: Vec<(String, String)>,
    keys_removed: Vec<String>,
    federated_added: Vec<FederatedSpec>,
    federated_removed: Vec<FederatedSpec>,
    certificates_added: Vec<CertificateMatch>,
    certificates_removed: Vec<CertificateMatch>,
    /// What the plan prints.
    said: Vec<String>,
}

fn list_text(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn ttl_text(ttl: Option<u32>) -> String {
    ttl.map_or_else(|| "server default".to_owned(), |t| format!("{t} s"))
}

/// The changes that make `current` as `desired` says.
fn diff(desired: &Desired, current: &pb::Client) -> Changes {
    let spec = &desired.spec;
    let mut changes = Changes::default();
    let mut update = pb::UpdateClientRequest {
        client_id: spec.id.clone(),
        ..Default::default()
    };
    let mut updating = false;
    if spec.scopes != current.scopes {
        changes.said.push(format!(
            "scopes {} -> {}",
            list_text(&current.scopes),
            list_text(&spec.scopes)
        ));
        update.scopes = Some(pb::StringList {
            values: spec.scopes.clone(),
        });
        updating = true;
    }
    if spec.audiences != current.audiences {
        changes.said.push(format!(
            "audiences {} -> {}",
            list_text(&current.audiences),
            list_text(&spec.audiences)
        ));
        update.audiences = Some(pb::StringList {
            values: spec.audiences.clone(),
        });
        updating = true;
    }
    if spec.token_ttl != current.token_ttl {
        changes.said.push(format!(
            "token_ttl {} -> {}",
            ttl_text(current.token_ttl),
            ttl_text(spec.token_ttl)
        ));
        update.token_ttl = spec.token_ttl;
        update.default_token_ttl = spec.token_ttl.is_none();
        updating = true;
    }
    if spec.bind_to_certificate != current.bind_to_certificate {
        changes.said.push(format!(
            "bind_to_certificate {} -> {}",
            current.bind_to_certificate, spec.bind_to_certificate
        ));
        update.bind_to_certificate = Some(spec.bind_to_certificate);
        updating = true;
    }
    if updating {
        changes.update = Some(update);
    }
    if spec.disabled != current.disabled {
        changes
            .said
            .push(if spec.disabled { "disable" } else { "enable" }.to_owned());
        changes.disabled = Some(spec.disabled);
    }
    if let Some(keys) = &desired.keys {
        for (kid, (alg, jwk)) in keys {
            match current.keys.iter().find(|k| &k.kid == kid) {
                Some(held) if &held.alg == alg && &held.jwk == jwk => {}
                Some(_) => {
                    changes.said.push(format!("replace key {kid}"));
                    changes.keys_removed.push(kid.clone());
                    changes.keys_added.push((kid.clone(), jwk.clone()));
                }
                None => {
                    changes.said.push(format!("add key {kid}"));
                    changes.keys_added.push((kid.clone(), jwk.clone()));
                }
            }
        }
        for held in current.keys.iter().filter(|k| !keys.contains_key(&k.kid)) {
            changes.said.push(format!("remove key {}", held.kid));
            changes.keys_removed.push(held.kid.clone());
        }
    }
    if let Some(identities) = &spec.federated_identities {
        let held: Vec<FederatedSpec> = current
            .federated_identities
            .iter()
            .map(|f| FederatedSpec {
                issuer: f.issuer.clone(),
                subject: f.subject.clone(),
            })
            .collect();
        for wanted in identities.iter().filter(|f| !held.contains(f)) {
            changes
                .said
                .push(format!("add federated {} {}", wanted.issuer, wanted.subject));
            changes.federated_added.push(wanted.clone());
        }
        for gone in held.iter().filter(|f| !identities.contains(f)) {
            changes
                .said
                .push(format!("remove federated {} {}", gone.issuer, gone.subject));
            changes.federated_removed.push(gone.clone());
        }
    }
    if let Some(wanted) = &desired.certificates {
        let held: Vec<CertificateMatch> = current
            .certificates
            .iter()
            .filter_map(|c| CertificateMatch::from_stored(&c.kind, c.value.clone()).ok())
            .collect();
        for matcher in wanted.iter().filter(|m| !held.contains(m)) {
            changes.said.push(format!("add certificate {matcher}"));
            changes.certificates_added.push(matcher.clone());
        }
        for matcher in held.iter().filter(|m| !wanted.contains(m)) {
            changes.said.push(format!("remove certificate {matcher}"));
            changes.certificates_removed.push(matcher.clone());
        }
    }
    changes
}

/// One line of the plan.
enum Step {
    Create(Desired),
    Update(String, Changes),
    Unchanged(String),
    Delete(String),
}

/// Runs `tessera apply`.
pub(super) async fn apply(command: Apply) -> Result<(), CliError> {
    let _log_guard = logging::init(LogFormat::Text, false);
    let desired = read_file(&command.file)?;
    if let Some(path) = &command.secrets_out
        && path.exists()
    {
        return Err(CliError::failed(format!(
            "--secrets-out {} exists already: name a new file (secrets are never written over)",
            path.display()
        )));
    }
    let admin = command.target.open(None).await?;
    let acting = command.target.acting_client_id()?;
    let current: BTreeMap<String, pb::Client> = admin
        .all_clients()
        .await?
        .into_iter()
        .map(|c| (c.client_id.clone(), c))
        .collect();
    let named: HashSet<&str> = desired.iter().map(|d| d.spec.id.as_str()).collect();
    let mut plan = Vec::new();
    for wanted in &desired {
        match current.get(&wanted.spec.id) {
            None => plan.push(Step::Create(wanted.clone())),
            Some(held) => {
                let changes = diff(wanted, held);
                if changes.said.is_empty() {
                    plan.push(Step::Unchanged(wanted.spec.id.clone()));
                } else {
                    plan.push(Step::Update(wanted.spec.id.clone(), changes));
                }
            }
        }
    }
    let mut unnamed: Vec<&String> = current.keys().filter(|id| !named.contains(id.as_str())).collect();
    // Pruning the admin client making the change would lock its owner out
    // halfway: it is kept, and said so.
    let kept_acting = acting.as_ref().filter(|id| unnamed.contains(id)).cloned();
    unnamed.retain(|id| Some(*id) != acting.as_ref());
    if command.prune {
        plan.extend(unnamed.iter().map(|id| Step::Delete((*id).clone())));
    }
    if let Some(id) = kept_acting.filter(|_| command.prune) {
        println!(
            "keep       {id} (the admin client running this apply; name it in the file, or prune it with --store)"
        );
    }
    let counts = print_plan(&plan);
    if !command.prune && !unnamed.is_empty() {
        println!(
            "{} client(s) exist that the file does not name; --prune would delete them.",
            unnamed.len()
        );
    }
    if counts.changes == 0 {
        println!("No changes.");
        return Ok(());
    }
    if command.dry_run {
        println!("Dry run: nothing was changed.");
        return Ok(());
    }
    let mut secrets = Vec::new();
    for step in plan {
        carry_out(&admin, step, &mut secrets).await?;
    }
    write_secrets(&secrets, command.secrets_out.as_deref())?;
    println!(
        "Applied: {} created, {} updated, {} deleted.",
        counts.create, counts.update, counts.delete
    );
    Ok(())
}

struct Counts {
    create: usize,
    update: usize,
    delete: usize,
    changes: usize,
}

fn print_plan(plan: &[Step]) -> Counts {
    let (mut create, mut update, mut unchanged, mut delete) = (0, 0, 0, 0);
    for step in plan {
        match step {
            Step::Create(d) => {
                create += 1;
                println!("create     {}", d.spec.id);
            }
            Step::Update(id, changes) => {
                update += 1;
                println!("update     {id}: {}", changes.said.join("; "));
            }
            Step::Unchanged(id) => {
                unchanged += 1;
                println!("unchanged  {id}");
            }
            Step::Delete(id) => {
                delete += 1;
                println!("delete     {id}");
            }
        }
    }
    println!("Plan: {create} to create, {update} to update, {unchanged} unchanged, {delete} to delete.");
    Counts {
        create,
        update,
        delete,
        changes: create + update + delete,
    }
}

async fn carry_out(admin: &Admin, step: Step, secrets: &mut Vec<(String, String)>) -> Result<(), CliError> {
    match step {
        Step::Unchanged(_) => Ok(()),
        Step::Delete(id) => {
            admin.delete_client(pb::ClientRequest { client_id: id }).await?;
            Ok(())
        }
        Step::Create(desired) => {
            let spec = &desired.spec;
            let created = admin
                .create_client(pb::CreateClientRequest {
                    client_id: spec.id.clone(),
                    scopes: spec.scopes.clone(),
                    audiences: spec.audiences.clone(),
                    token_ttl: spec.token_ttl,
                    bind_to_certificate: spec.bind_to_certificate,
                    no_secret: spec.secret == Some(false),
                })
                .await?;
            if !created.client_secret.is_empty() {
                secrets.push((spec.id.clone(), created.client_secret));
            }
            // The rest is what an update from a bare client would do.
            let changes = diff(&desired, &created.client.unwrap_or_default());
            change(admin, &spec.id, changes).await
        }
        Step::Update(id, changes) => change(admin, &id, changes).await,
    }
}

async fn change(admin: &Admin, id: &str, changes: Changes) -> Result<(), CliError> {
    let client_id = || id.to_owned();
    if let Some(update) = changes.update {
        admin.update_client(update).await?;
    }
    for kid in changes.keys_removed {
        admin
            .remove_client_key(pb::RemoveClientKeyRequest {
                client_id: client_id(),
                kid,
            })
            .await?;
    }
    for (kid, jwk) in changes.keys_added {
        admin
            .add_client_key(pb::AddClientKeyRequest {
                client_id: client_id(),
                jwk,
                kid,
                ..Default::default()
            })
            .await?;
    }
    for gone in changes.federated_removed {
        admin
            .remove_federated_identity(pb::FederatedIdentityRequest {
                client_id: client_id(),
                issuer: gone.issuer,
                subject: gone.subject,
            })
            .await?;
    }
    for wanted in changes.federated_added {
        admin
            .add_federated_identity(pb::FederatedIdentityRequest {
                client_id: client_id(),
                issuer: wanted.issuer,
                subject: wanted.subject,
            })
            .await?;
    }
    for matcher in changes.certificates_removed {
        admin
            .remove_client_certificate(CertificateEntry::from_match(&matcher).request(id))
            .await?;
    }
    for matcher in changes.certificates_added {
        admin
            .add_client_certificate(CertificateEntry::from_match(&matcher).request(id))
            .await?;
    }
    match changes.disabled {
        Some(true) => {
            admin
                .disable_client(pb::ClientRequest { client_id: client_id() })
                .await?;
        }
        Some(false) => {
            admin
                .enable_client(pb::ClientRequest { client_id: client_id() })
                .await?;
        }
        None => {}
    }
    Ok(())
}

/// The new clients' secrets: to a new private file, or standard output (shown once).
fn write_secrets(secrets: &[(String, String)], out: Option<&Path>) -> Result<(), CliError> {
    if secrets.is_empty() {
        return Ok(());
    }
    let entries: Vec<_> = secrets
        .iter()
        .map(|(id, secret)| serde_json::json!({ "client_id": id, "client_secret": secret }))
        .collect();
    match out {
        Some(path) => {
            let mut text = serde_json::to_string_pretty(&entries).map_err(CliError::failed)?;
            text.push('\n');
            crate::private_files::write_new(path, text.as_bytes()).map_err(CliError::Failed)?;
            println!(
                "Wrote the secrets of {} new client(s) to {} (mode 0600).",
                secrets.len(),
                path.display()
            );
        }
        None => {
            println!("Secrets of the new clients (shown once; Tessera keeps only hashes):");
            for (id, secret) in secrets {
                println!("{id}: {secret}");
            }
        }
    }
    Ok(())
}

/// Runs `tessera export`: the clients, in the format `apply` reads.
pub(super) async fn export(command: Export) -> Result<(), CliError> {
    let _log_guard = logging::init(LogFormat::Text, false);
    let admin = command.target.open(None).await?;
    let clients = admin.all_clients().await?;
    let file = ClientsFile {
        clients: clients.iter().map(exported).collect::<Result<_, _>>()?,
    };
    let text = serde_yaml_ng::to_string(&file).map_err(CliError::failed)?;
    print!("# Tessera clients, from tessera export; apply with: tessera apply -f FILE\n{text}");
    Ok(())
}

fn exported(client: &pb::Client) -> Result<ClientSpec, CliError> {
    let keys = client
        .keys
        .iter()
        .map(|k| {
            let jwk = serde_json::from_str(&k.jwk).map_err(|e| {
                CliError::failed(format!(
                    "client {:?}: key {:?} is not JSON: {e}",
                    client.client_id, k.kid
                ))
            })?;
            Ok(KeySpec {
                kid: Some(k.kid.clone()),
                jwk,
            })
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    Ok(ClientSpec {
        id: client.client_id.clone(),
        scopes: client.scopes.clone(),
        audiences: client.audiences.clone(),
        token_ttl: client.token_ttl,
        disabled: client.disabled,
        bind_to_certificate: client.bind_to_certificate,
        secret: None,
        keys: Some(keys),
        federated_identities: Some(
            client
                .federated_identities
                .iter()
                .map(|f| FederatedSpec {
                    issuer: f.issuer.clone(),
                    subject: f.subject.clone(),
                })
                .collect(),
        ),
        certificates: Some(
            client
                .certificates
                .iter()
                .filter_map(|c| CertificateMatch::from_stored(&c.kind, c.value.clone()).ok())
                .map(|m| CertificateEntry::from_match(&m))
                .collect(),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ClientsFile, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(text)
    }

    #[test]
    fn the_issue_s_example_reads() {
        let file = parse(
            "clients:\n  - id: billing\n    scopes: [invoices:read, invoices:write]\n    audiences: [https://ledger.internal]\n    token_ttl: 600        # optional\n    disabled: false       # optional\n",
        )
        .unwrap();
        assert_eq!(file.clients[0].id, "billing");
        assert_eq!(file.clients[0].token_ttl, Some(600));
        assert!(check(file.clients[0].clone()).is_ok());
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line() {
        let err = parse("clients:\n  - id: billing\n    scopes: [a]\n    scope: [b]\n").unwrap_err();
        assert_eq!(err.location().map(|l| l.line()), Some(4), "{err}");
    }

    #[test]
    fn a_client_is_found_by_its_id_line() {
        let text = "clients:\n  - id: a\n    scopes: [x]\n  - scopes: [y]\n    id: 'b'  # the second\n";
        assert_eq!(line_of(text, "a"), Some(2));
        assert_eq!(line_of(text, "b"), Some(5));
    }

    #[test]
    fn a_certificate_names_one_thing() {
        let two = CertificateEntry {
            san_uri: Some("spiffe://x/y".into()),
            san_dns: Some("x.internal".into()),
            ..Default::default()
        };
        assert!(admin::api::certificate_spec(two.request("x")).is_err());
    }
}
