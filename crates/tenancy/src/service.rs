//! [`Tenancy`]: the tenancy service the broker and the control plane share.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_storage::catalog::{Catalog, CredentialRow, TenantRow, TokenRow};
use sluice_storage::now_ms;

use crate::acl::{self, AclBinding, AclFilter, Operation, PatternType, ResourceType};
use crate::error::{Result, TenancyError};
use crate::names;
use crate::pki::Pki;
use crate::plan::{Plan, Plans};
use crate::principal::Principal;
use crate::scram::{Mechanism, ScramKeys};
use crate::seal::Sealer;

/// How often the snapshot is reloaded from the catalog, so that changes made
/// through another broker apply here.
const REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// The operator's own login: a SASL user (a superuser) whose password is the
/// operator token, which also authorizes the REST API.
#[derive(Debug, Clone)]
pub struct OperatorCredential {
    pub username: String,
    pub token: String,
}

pub struct TenancyOptions {
    pub plans: Plans,
    /// `None` leaves the broker open: everyone is the anonymous superuser
    /// and tenants cannot be managed.
    pub operator: Option<OperatorCredential>,
    /// More principals (`User:<name>`) that operate everything.
    pub superusers: Vec<String>,
    /// Issues client certificates with new credentials, when TLS is on.
    pub pki: Option<Arc<Pki>>,
    /// Seals each credential's password and client key into the catalog so
    /// that they can be shown again (`sluice config`); `None` stores only
    /// the salted keys, and [`Tenancy::reveal`] then refuses.
    pub sealer: Option<Arc<Sealer>>,
}

/// A tenant as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantInfo {
    pub name: String,
    pub plan: String,
    pub prefix: String,
    pub created_ms: i64,
}

/// A credential as the API lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialInfo {
    pub username: String,
    pub tenant: String,
    pub principal: String,
    pub created_ms: i64,
    pub has_certificate: bool,
}

/// A credential's secrets, shown once when it is created or rotated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCredential {
    pub username: String,
    pub tenant: String,
    pub password: String,
    /// PEM client certificate and key for mTLS, when the broker has TLS.
    pub client_cert: Option<String>,
    pub client_cert_key: Option<String>,
}

/// What a credential stores: salted keys for both SCRAM mechanisms (PLAIN
/// checks against the SHA-512 ones) and its certificate's fingerprint.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CredentialSecret {
    scram_sha256: ScramKeys,
    scram_sha512: ScramKeys,
    cert_sha256: Option<String>,
    /// The password and client key, sealed (see [`crate::seal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

/// What is sealed in [`CredentialSecret::sealed`].
#[derive(Serialize, Deserialize)]
struct Revealed {
    password: String,
    client_cert: Option<String>,
    client_cert_key: Option<String>,
}

#[derive(Debug, Clone)]
struct Credential {
    row: CredentialRow,
    secret: CredentialSecret,
}

/// The catalog's tenancy records, in memory.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) tenants: BTreeMap<String, TenantRow>,
    credentials: HashMap<String, Credential>,
    /// Certificate fingerprint to username.
    certificates: HashMap<String, String>,
    acls: Vec<AclBinding>,
    /// API tokens by the SHA-256 of the token.
    pub(crate) tokens: HashMap<String, TokenRow>,
}

pub struct Tenancy {
    pub(crate) catalog: Arc<dyn Catalog>,
    plans: RwLock<Plans>,
    operator: Option<(OperatorCredential, CredentialSecret)>,
    superusers: BTreeSet<String>,
    pki: Option<Arc<Pki>>,
    sealer: Option<Arc<Sealer>>,
    snapshot: RwLock<Arc<Snapshot>>,
}

/// A password of 32 letters and digits (190 bits).
fn new_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..32)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn secret_for(password: &str, cert_sha256: Option<String>) -> CredentialSecret {
    CredentialSecret {
        scram_sha256: ScramKeys::derive(Mechanism::Sha256, password),
        scram_sha512: ScramKeys::derive(Mechanism::Sha512, password),
        cert_sha256,
        sealed: None,
    }
}

impl Tenancy {
    /// Loads the records and starts the periodic reload (inside a Tokio
    /// runtime).
    pub async fn open(catalog: Arc<dyn Catalog>, options: TenancyOptions) -> Result<Arc<Tenancy>> {
        let operator = options.operator.map(|op| {
            let secret = secret_for(&op.token, None);
            (op, secret)
        });
        let mut superusers: BTreeSet<String> = options.superusers.into_iter().collect();
        if let Some((op, _)) = &operator {
            superusers.insert(Principal::user(&op.username));
        }
        let tenancy = Arc::new(Tenancy {
            catalog,
            plans: RwLock::new(options.plans),
            operator,
            superusers,
            pki: options.pki,
            sealer: options.sealer,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
        });
        tenancy.refresh().await?;
        let weak = Arc::downgrade(&tenancy);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(t) = weak.upgrade() else { break };
                if let Err(e) = t.refresh().await {
                    tracing::warn!(error = %e, "reloading tenancy records");
                }
            }
        });
        Ok(tenancy)
    }

    /// Whether tenants and authentication are on (`--multi-tenant`).
    pub fn enabled(&self) -> bool {
        self.operator.is_some()
    }

    /// Reloads every record from the catalog.
    pub async fn refresh(&self) -> Result<()> {
        let tenants = self.catalog.list_tenants().await?;
        let credentials = self.catalog.list_credentials().await?;
        let acls = self.catalog.list_acls().await?;
        let tokens = self.catalog.list_tokens().await?;
        let mut snap = Snapshot {
            tenants: tenants.into_iter().map(|t| (t.name.clone(), t)).collect(),
            tokens: tokens.into_iter().map(|t| (t.hash.clone(), t)).collect(),
            acls: acls.iter().filter_map(AclBinding::from_row).collect(),
            ..Snapshot::default()
        };
        for row in credentials {
            match serde_json::from_str::<CredentialSecret>(&row.secret) {
                Ok(secret) => {
                    if let Some(fp) = &secret.cert_sha256 {
                        snap.certificates.insert(fp.clone(), row.username.clone());
                    }
                    snap.credentials
                        .insert(row.username.clone(), Credential { row, secret });
                }
                Err(e) => {
                    tracing::error!(username = %row.username, error = %e, "unreadable credential secret")
                }
            }
        }
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
        Ok(())
    }

    pub(crate) fn snap(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn require_enabled(&self) -> Result<()> {
        if self.enabled() {
            Ok(())
        } else {
            Err(TenancyError::Disabled)
        }
    }

    pub fn plans(&self) -> Plans {
        self.plans.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn plan(&self, name: &str) -> Result<Arc<Plan>> {
        self.plans
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
    }

    pub fn pki(&self) -> Option<&Arc<Pki>> {
        self.pki.as_ref()
    }

    // ---- tenants -------------------------------------------------------

    /// Creates a tenant on `plan` (named `name`, or a generated name) with
    /// its first credential, whose username is the tenant's name.
    pub async fn create_tenant(
        &self,
        name: Option<&str>,
        plan: &str,
    ) -> Result<(TenantInfo, IssuedCredential)> {
        self.require_enabled()?;
        self.plan(plan)?;
        let mut attempts = 0;
        let row = loop {
            let candidate = match name {
                Some(n) => {
                    names::validate(n).map_err(TenancyError::InvalidName)?;
                    n.to_string()
                }
                None => names::generate(),
            };
            let row = TenantRow {
                name: candidate.clone(),
                plan: plan.to_string(),
                created_ms: now_ms(),
            };
            if self.catalog.create_tenant(&row).await? {
                break row;
            }
            attempts += 1;
            if name.is_some() || attempts >= 10 {
                return Err(TenancyError::TenantExists(candidate));
            }
        };
        let issued = self.create_credential(&row.name, Some(&row.name)).await?;
        tracing::info!(tenant = %row.name, plan, "created tenant");
        Ok((tenant_info(&row), issued))
    }

    pub fn tenants(&self) -> Vec<TenantInfo> {
        self.snap().tenants.values().map(tenant_info).collect()
    }

    pub fn tenant(&self, name: &str) -> Result<TenantInfo> {
        self.snap()
            .tenants
            .get(name)
            .map(tenant_info)
            .ok_or_else(|| TenancyError::UnknownTenant(name.to_string()))
    }

    /// The plan a tenant is on now.
    pub fn tenant_plan(&self, tenant: &str) -> Result<Arc<Plan>> {
        let plan = self.tenant(tenant)?.plan;
        self.plan(&plan)
    }

    /// Moves a tenant to another plan in place: its topics, data, offsets
    /// and credentials stay; its credentials' ACLs become the new plan's,
    /// and the new limits and rates apply from the tenant's next request.
    pub async fn change_plan(&self, name: &str, plan: &str) -> Result<TenantInfo> {
        self.require_enabled()?;
        let new_plan = self.plan(plan)?;
        let tenant = self.catalog_tenant(name).await?;
        let prefix = names::prefix(name);
        let old_acls: Vec<_> = match self.plan(&tenant.plan) {
            Ok(old) => self
                .tenant_principals(name)
                .iter()
                .flat_map(|p| tenant_acls(p, &prefix, &old))
                .map(|a| a.to_row())
                .collect(),
            // A plan since removed from the plans file: keep the ACLs.
            Err(_) => Vec::new(),
        };
        let new_acls: Vec<_> = self
            .tenant_principals(name)
            .iter()
            .flat_map(|p| tenant_acls(p, &prefix, &new_plan))
            .map(|a| a.to_row())
            .collect();
        if !self.catalog.set_tenant_plan(name, plan).await? {
            return Err(TenancyError::UnknownTenant(name.to_string()));
        }
        // Grant first, then take away what the new plan lacks, so that no
        // broker's reload sees the tenant without its common grants.
        self.catalog.add_acls(&new_acls).await?;
        let dropped: Vec<_> = old_acls
            .into_iter()
            .filter(|a| !new_acls.contains(a))
            .collect();
        self.catalog.delete_acls(&dropped).await?;
        self.refresh().await?;
        tracing::info!(tenant = %name, from = %tenant.plan, to = %plan, "changed plan");
        self.tenant(name)
    }

    /// The principals of a tenant's credentials.
    fn tenant_principals(&self, tenant: &str) -> Vec<String> {
        self.snap()
            .credentials
            .values()
            .filter(|c| c.row.tenant == tenant)
            .map(|c| Principal::user(&c.row.username))
            .collect()
    }

    /// Forgets a tenant, its credentials and every ACL of its principals or
    /// on its prefix. Its topics and groups must be removed by the caller
    /// first (the control plane owns storage and the group coordinator).
    pub async fn destroy_tenant(&self, name: &str) -> Result<()> {
        self.require_enabled()?;
        let snap = self.snap();
        if !snap.tenants.contains_key(name) {
            return Err(TenancyError::UnknownTenant(name.to_string()));
        }
        let principals: BTreeSet<String> = snap
            .credentials
            .values()
            .filter(|c| c.row.tenant == name)
            .map(|c| Principal::user(&c.row.username))
            .collect();
        let prefix = names::prefix(name);
        let acls: Vec<_> = snap
            .acls
            .iter()
            .filter(|a| principals.contains(&a.principal) || a.resource_name.starts_with(&prefix))
            .map(AclBinding::to_row)
            .collect();
        self.catalog.delete_acls(&acls).await?;
        self.catalog.delete_tenant(name).await?;
        self.refresh().await?;
        tracing::info!(tenant = %name, "destroyed tenant");
        Ok(())
    }

    // ---- credentials ---------------------------------------------------

    /// Adds a credential to a tenant: username `<tenant>-<name>` (or the
    /// tenant's own name for its first), a fresh password, a client
    /// certificate when TLS is on, and the ACLs the plan grants.
    pub async fn create_credential(
        &self,
        tenant: &str,
        username: Option<&str>,
    ) -> Result<IssuedCredential> {
        self.require_enabled()?;
        let info = self.catalog_tenant(tenant).await?;
        let username = match username {
            Some(u) if u == tenant => u.to_string(),
            Some(u) => {
                let u = u.strip_prefix(&format!("{tenant}-")).unwrap_or(u);
                names::validate(u).map_err(|_| {
                    TenancyError::InvalidName(format!(
                        "credential name `{u}` is not valid: use lower-case letters, digits and `-`, starting with a letter"
                    ))
                })?;
                format!("{tenant}-{u}")
            }
            None => format!("{tenant}-{}", rand::random_range(1000..10000)),
        };
        if self.snap().credentials.contains_key(&username)
            || self.operator_name() == Some(&username)
        {
            return Err(TenancyError::CredentialExists(username));
        }
        let issued = self.store_secret(tenant, &username).await?;
        let plan = self.plan(&info.plan)?;
        let acls: Vec<_> = tenant_acls(&Principal::user(&username), &names::prefix(tenant), &plan)
            .iter()
            .map(AclBinding::to_row)
            .collect();
        self.catalog.add_acls(&acls).await?;
        self.refresh().await?;
        Ok(issued)
    }

    /// Replaces a credential's password and certificate; the old ones stop
    /// working at once on this broker and within a refresh on others.
    pub async fn rotate_credential(
        &self,
        tenant: &str,
        username: &str,
    ) -> Result<IssuedCredential> {
        self.require_enabled()?;
        self.owned_credential(tenant, username)?;
        let issued = self.store_secret(tenant, username).await?;
        self.refresh().await?;
        Ok(issued)
    }

    /// Removes a credential and its ACLs.
    pub async fn revoke_credential(&self, tenant: &str, username: &str) -> Result<()> {
        self.require_enabled()?;
        self.owned_credential(tenant, username)?;
        let principal = Principal::user(username);
        let acls: Vec<_> = self
            .snap()
            .acls
            .iter()
            .filter(|a| a.principal == principal)
            .map(AclBinding::to_row)
            .collect();
        self.catalog.delete_credential(username).await?;
        self.catalog.delete_acls(&acls).await?;
        self.refresh().await?;
        Ok(())
    }

    pub fn credentials(&self, tenant: &str) -> Result<Vec<CredentialInfo>> {
        self.tenant(tenant)?;
        let snap = self.snap();
        let mut list: Vec<_> = snap
            .credentials
            .values()
            .filter(|c| c.row.tenant == tenant)
            .map(|c| CredentialInfo {
                username: c.row.username.clone(),
                tenant: c.row.tenant.clone(),
                principal: Principal::user(&c.row.username),
                created_ms: c.row.created_ms,
                has_certificate: c.secret.cert_sha256.is_some(),
            })
            .collect();
        list.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(list)
    }

    async fn catalog_tenant(&self, tenant: &str) -> Result<TenantRow> {
        if let Some(t) = self.snap().tenants.get(tenant) {
            return Ok(t.clone());
        }
        // Just created through another broker: look in the catalog.
        self.refresh().await?;
        self.snap()
            .tenants
            .get(tenant)
            .cloned()
            .ok_or_else(|| TenancyError::UnknownTenant(tenant.to_string()))
    }

    fn owned_credential(&self, tenant: &str, username: &str) -> Result<()> {
        self.tenant(tenant)?;
        match self.snap().credentials.get(username) {
            Some(c) if c.row.tenant == tenant => Ok(()),
            _ => Err(TenancyError::UnknownCredential {
                tenant: tenant.to_string(),
                username: username.to_string(),
            }),
        }
    }

    async fn store_secret(&self, tenant: &str, username: &str) -> Result<IssuedCredential> {
        let password = new_password();
        let cert = match &self.pki {
            Some(pki) => Some(pki.issue_client(username)?),
            None => None,
        };
        let mut secret = secret_for(&password, cert.as_ref().map(|c| c.fingerprint.clone()));
        if let Some(sealer) = &self.sealer {
            let revealed = Revealed {
                password: password.clone(),
                client_cert: cert.as_ref().map(|c| c.cert_pem.clone()),
                client_cert_key: cert.as_ref().map(|c| c.key_pem.clone()),
            };
            let json = serde_json::to_vec(&revealed)
                .map_err(|e| TenancyError::Seal(format!("encoding a secret: {e}")))?;
            secret.sealed = Some(sealer.seal(&json)?);
        }
        let row = CredentialRow {
            username: username.to_string(),
            tenant: tenant.to_string(),
            secret: serde_json::to_string(&secret)
                .map_err(|e| TenancyError::Pki(format!("encoding a secret: {e}")))?,
            created_ms: now_ms(),
        };
        if !self.catalog.save_credential(&row).await? {
            return Err(TenancyError::CredentialExists(username.to_string()));
        }
        Ok(IssuedCredential {
            username: username.to_string(),
            tenant: tenant.to_string(),
            password,
            client_cert: cert.as_ref().map(|c| c.cert_pem.clone()),
            client_cert_key: cert.map(|c| c.key_pem),
        })
    }

    /// A credential's current password and client certificate, opened
    /// from the catalog (for `sluice config`).
    pub fn reveal(&self, tenant: &str, username: &str) -> Result<IssuedCredential> {
        self.owned_credential(tenant, username)?;
        let snap = self.snap();
        let cred =
            snap.credentials
                .get(username)
                .ok_or_else(|| TenancyError::UnknownCredential {
                    tenant: tenant.to_string(),
                    username: username.to_string(),
                })?;
        let (Some(sealer), Some(sealed)) = (&self.sealer, &cred.secret.sealed) else {
            return Err(TenancyError::Seal(format!(
                "the password of `{username}` was not kept; rotate the credential to get a new one"
            )));
        };
        let revealed: Revealed = serde_json::from_slice(&sealer.open(sealed)?)
            .map_err(|e| TenancyError::Seal(format!("decoding a sealed secret: {e}")))?;
        Ok(IssuedCredential {
            username: username.to_string(),
            tenant: tenant.to_string(),
            password: revealed.password,
            client_cert: revealed.client_cert,
            client_cert_key: revealed.client_cert_key,
        })
    }

    // ---- authentication ------------------------------------------------

    fn operator_name(&self) -> Option<&String> {
        self.operator.as_ref().map(|(op, _)| &op.username)
    }

    /// Whether `token` is the operator token (compared in constant time).
    pub fn is_operator_token(&self, token: &str) -> bool {
        match &self.operator {
            Some((_, secret)) => secret
                .scram_sha512
                .verify_password(Mechanism::Sha512, token),
            None => false,
        }
    }

    /// The principal a username logs in as, if it exists.
    pub fn principal(&self, username: &str) -> Option<Principal> {
        let name = Principal::user(username);
        if self.operator_name().is_some_and(|op| op == username) {
            return Some(Principal {
                name,
                tenant: None,
                superuser: true,
            });
        }
        let snap = self.snap();
        let cred = snap.credentials.get(username)?;
        Some(Principal {
            superuser: self.superusers.contains(&name),
            name,
            tenant: Some(cred.row.tenant.clone()),
        })
    }

    /// SASL PLAIN: the principal, if the password is right.
    pub fn authenticate_plain(&self, username: &str, password: &str) -> Option<Principal> {
        let keys = self.scram_keys(Mechanism::Sha512, username)?;
        if keys.verify_password(Mechanism::Sha512, password) {
            self.principal(username)
        } else {
            None
        }
    }

    /// A user's stored keys for a SCRAM mechanism.
    pub fn scram_keys(&self, mechanism: Mechanism, username: &str) -> Option<ScramKeys> {
        let pick = |s: &CredentialSecret| match mechanism {
            Mechanism::Sha256 => s.scram_sha256.clone(),
            Mechanism::Sha512 => s.scram_sha512.clone(),
        };
        if let Some((op, secret)) = &self.operator {
            if op.username == username {
                return Some(pick(secret));
            }
        }
        self.snap()
            .credentials
            .get(username)
            .map(|c| pick(&c.secret))
    }

    /// mTLS: the principal whose current certificate has this fingerprint.
    pub fn principal_for_certificate(&self, fingerprint: &str) -> Option<Principal> {
        let username = self.snap().certificates.get(fingerprint)?.clone();
        self.principal(&username)
    }

    // ---- authorization -------------------------------------------------

    /// Whether `principal`, connected from `host`, may do `operation` on a
    /// resource. A refusal says why and what to do instead.
    pub fn authorize(
        &self,
        principal: &Principal,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> Result<(), String> {
        if principal.superuser {
            return Ok(());
        }
        let snap = self.snap();
        let allowed = acl::permits(
            &snap.acls,
            &principal.name,
            host,
            operation,
            resource_type,
            name,
        );
        let tenant = principal.tenant.as_deref();
        if allowed {
            // The plan caps what ACLs grant on topics.
            if let (Some(t), ResourceType::Topic) = (tenant, resource_type) {
                let admin = matches!(
                    operation,
                    Operation::Create
                        | Operation::Delete
                        | Operation::Alter
                        | Operation::AlterConfigs
                );
                if admin {
                    let plan = snap
                        .tenants
                        .get(t)
                        .and_then(|row| self.plan(&row.plan).ok());
                    if let Some(plan) = plan.filter(|p| !p.admin_topics) {
                        return Err(format!(
                            "plan `{}` does not let clients manage topics through the Kafka Admin API; use `sluice topics` instead",
                            plan.name
                        ));
                    }
                }
            }
            return Ok(());
        }
        let kind = match resource_type {
            ResourceType::Topic => "topic",
            ResourceType::Group => "consumer group",
            ResourceType::Cluster => "the cluster",
            ResourceType::TransactionalId => "transactional id",
            _ => "resource",
        };
        if let (Some(t), ResourceType::Topic | ResourceType::Group) = (tenant, resource_type) {
            let prefix = names::prefix(t);
            if !name.starts_with(&prefix) {
                return Err(format!(
                    "{kind} `{name}` is not under your prefix `{prefix}`; use `{prefix}{name}`"
                ));
            }
        }
        if resource_type == ResourceType::Cluster {
            return Err(format!(
                "{} is not allowed to {operation} {kind}: that takes an operator",
                principal.name
            ));
        }
        Err(format!(
            "{} is not allowed to {operation} {kind} `{name}`: no ACL grants it (see `sluice credentials list`)",
            principal.name
        ))
    }

    /// The tenant and plan a principal acts under; `None` for operators.
    pub fn principal_plan(&self, principal: &Principal) -> Option<(String, Arc<Plan>)> {
        let tenant = principal.tenant.as_ref()?;
        let plan = self.tenant_plan(tenant).ok()?;
        Some((tenant.clone(), plan))
    }

    // ---- ACL administration (CreateAcls, DescribeAcls, DeleteAcls) -----

    pub async fn create_acls(&self, bindings: &[AclBinding]) -> Result<()> {
        let rows: Vec<_> = bindings.iter().map(AclBinding::to_row).collect();
        self.catalog.add_acls(&rows).await?;
        self.refresh().await
    }

    pub fn describe_acls(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.snap()
            .acls
            .iter()
            .filter(|b| filter.matches(b))
            .cloned()
            .collect()
    }

    /// Deletes the bindings each filter matches; returns them per filter.
    pub async fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>> {
        self.refresh().await?;
        let matched: Vec<Vec<AclBinding>> = filters.iter().map(|f| self.describe_acls(f)).collect();
        let rows: BTreeSet<_> = matched.iter().flatten().map(AclBinding::to_row).collect();
        let rows: Vec<_> = rows.into_iter().collect();
        self.catalog.delete_acls(&rows).await?;
        self.refresh().await?;
        Ok(matched)
    }
}

fn tenant_info(row: &TenantRow) -> TenantInfo {
    TenantInfo {
        name: row.name.clone(),
        plan: row.plan.clone(),
        prefix: names::prefix(&row.name),
        created_ms: row.created_ms,
    }
}

/// What a tenant's credential may do: on topics under the prefix, read,
/// write and describe (and manage them when the plan allows); on groups
/// under the prefix, use, describe and delete them; idempotent produce.
pub fn tenant_acls(principal: &str, prefix: &str, plan: &Plan) -> Vec<AclBinding> {
    use Operation as O;
    let mut topic_ops = vec![O::Read, O::Write, O::Describe, O::DescribeConfigs];
    if plan.admin_topics {
        topic_ops.extend([O::Create, O::Delete, O::Alter, O::AlterConfigs]);
    }
    let mut acls: Vec<_> = topic_ops
        .into_iter()
        .map(|op| {
            AclBinding::allow(
                principal,
                ResourceType::Topic,
                PatternType::Prefixed,
                prefix,
                op,
            )
        })
        .collect();
    acls.extend([O::Read, O::Describe, O::Delete].into_iter().map(|op| {
        AclBinding::allow(
            principal,
            ResourceType::Group,
            PatternType::Prefixed,
            prefix,
            op,
        )
    }));
    acls.push(AclBinding::allow(
        principal,
        ResourceType::Cluster,
        PatternType::Literal,
        acl::CLUSTER_NAME,
        O::IdempotentWrite,
    ));
    acls
}
