//! The tenancy service on a real SQLite catalog: tenants, credentials,
//! authentication and the isolation ACLs give.

use std::sync::Arc;

use sluice_storage::catalog::sql::SqlCatalog;
use sluice_storage::catalog::Catalog;
use sluice_tenancy::acl::{Operation as O, ResourceType as R};
use sluice_tenancy::scram::Mechanism;
use sluice_tenancy::{OperatorCredential, Plans, Sealer, Tenancy, TenancyError, TenancyOptions};

async fn tenancy(dir: &tempfile::TempDir) -> Arc<Tenancy> {
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let catalog: Arc<dyn Catalog> = Arc::new(SqlCatalog::connect(&url).await.unwrap());
    Tenancy::open(
        catalog,
        TenancyOptions {
            plans: Plans::built_in(),
            operator: Some(OperatorCredential {
                username: "admin".into(),
                token: "operator-secret".into(),
            }),
            superusers: vec![],
            pki: None,
            sealer: Some(Arc::new(
                Sealer::load_or_create(&dir.path().join("secrets.key")).unwrap(),
            )),
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn tenants_are_isolated_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenancy(&dir).await;
    let (a, a_cred) = t.create_tenant(Some("acme"), "basic-0").await.unwrap();
    let (b, _) = t.create_tenant(None, "basic-1").await.unwrap();
    assert_eq!(a.prefix, "acme.");
    assert!(
        b.name.rsplit_once('-').is_some(),
        "generated name {}",
        b.name
    );
    assert!(matches!(
        t.create_tenant(Some("acme"), "basic-0").await,
        Err(TenancyError::TenantExists(_))
    ));
    assert!(matches!(
        t.create_tenant(Some("x"), "gold").await,
        Err(TenancyError::UnknownPlan { .. })
    ));

    let p = t.authenticate_plain("acme", &a_cred.password).unwrap();
    assert_eq!(p.tenant.as_deref(), Some("acme"));
    assert!(!p.superuser);
    assert!(t.authenticate_plain("acme", "wrong").is_none());
    assert!(t.authenticate_plain("nobody", &a_cred.password).is_none());

    assert!(t
        .authorize(&p, "127.0.0.1", O::Write, R::Topic, "acme.events")
        .is_ok());
    assert!(t
        .authorize(&p, "127.0.0.1", O::Create, R::Topic, "acme.events")
        .is_ok());
    assert!(t
        .authorize(&p, "127.0.0.1", O::Read, R::Group, "acme.app")
        .is_ok());
    let e = t
        .authorize(&p, "127.0.0.1", O::Read, R::Topic, "events")
        .unwrap_err();
    assert_eq!(
        e,
        "topic `events` is not under your prefix `acme.`; use `acme.events`"
    );
    let other = format!("{}.events", b.name);
    let e = t
        .authorize(&p, "127.0.0.1", O::Describe, R::Topic, &other)
        .unwrap_err();
    assert!(e.contains("not under your prefix `acme.`"), "{e}");
    assert!(t
        .authorize(&p, "127.0.0.1", O::Alter, R::Cluster, "kafka-cluster")
        .is_err());

    let admin = t.authenticate_plain("admin", "operator-secret").unwrap();
    assert!(admin.superuser);
    assert!(t.is_operator_token("operator-secret"));
    assert!(!t.is_operator_token("operator-secre"));
}

#[tokio::test]
async fn credentials_rotate_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let t = tenancy(&dir).await;
    let (a, first) = t.create_tenant(Some("acme"), "basic-0").await.unwrap();
    let second = t.create_credential(&a.name, Some("worker")).await.unwrap();
    assert_eq!(second.username, "acme-worker");
    assert_eq!(t.credentials("acme").unwrap().len(), 2);
    assert!(t.scram_keys(Mechanism::Sha256, "acme-worker").is_some());

    let rotated = t.rotate_credential("acme", "acme").await.unwrap();
    assert!(t.authenticate_plain("acme", &first.password).is_none());
    assert!(t.authenticate_plain("acme", &rotated.password).is_some());

    t.revoke_credential("acme", "acme-worker").await.unwrap();
    assert!(t
        .authenticate_plain("acme-worker", &second.password)
        .is_none());
    assert!(t.principal("acme-worker").is_none());
    assert!(matches!(
        t.revoke_credential("acme", "acme-worker").await,
        Err(TenancyError::UnknownCredential { .. })
    ));

    // The current password can be shown again (sealed in the catalog)...
    let shown = t.reveal("acme", "acme").unwrap();
    assert_eq!(shown.password, rotated.password);
    assert!(matches!(
        t.reveal("acme", "acme-worker"),
        Err(TenancyError::UnknownCredential { .. })
    ));
    // ...yet secrets are stored salted or sealed, never in clear: not in the
    // catalog file nor its write-ahead log, which do hold the username.
    let catalog = catalog_bytes(&dir);
    let contains = |needle: &[u8]| catalog.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"acme-worker"), "the grep sees the catalog's rows");
    assert!(!contains(rotated.password.as_bytes()));
    assert!(!contains(first.password.as_bytes()));
    assert!(!contains(second.password.as_bytes()));

    t.destroy_tenant("acme").await.unwrap();
    assert!(t.authenticate_plain("acme", &rotated.password).is_none());
    assert!(t.tenants().is_empty());
    let all = sluice_tenancy::acl::AclFilter {
        resource_type: R::Any,
        resource_name: None,
        pattern_type: sluice_tenancy::acl::PatternType::Any,
        principal: None,
        host: None,
        operation: O::Any,
        permission: sluice_tenancy::acl::Permission::Any,
    };
    assert!(
        t.describe_acls(&all).is_empty(),
        "a destroyed tenant's ACLs go with it"
    );
}

/// Every file of the SQLite catalog (database, WAL, journal), concatenated.
fn catalog_bytes(dir: &tempfile::TempDir) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("catalog.db")
        {
            all.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    all
}

#[tokio::test]
async fn secrets_are_not_revealed_without_a_sealer() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let catalog: Arc<dyn Catalog> = Arc::new(SqlCatalog::connect(&url).await.unwrap());
    let t = Tenancy::open(
        catalog,
        TenancyOptions {
            plans: Plans::built_in(),
            operator: Some(OperatorCredential {
                username: "admin".into(),
                token: "operator-secret".into(),
            }),
            superusers: vec![],
            pki: None,
            sealer: None,
        },
    )
    .await
    .unwrap();
    t.create_tenant(Some("acme"), "basic-0").await.unwrap();
    let e = t.reveal("acme", "acme").unwrap_err();
    assert!(e.to_string().contains("rotate the credential"), "{e}");
}
