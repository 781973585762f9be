//! The catalog conformance suite on SQLite and on PostgreSQL.
//!
//! PostgreSQL runs when `SLUICE_TEST_POSTGRES_URL` is set (scripts/test
//! starts a server and sets it). With `SLUICE_REQUIRE_POSTGRES=1` (also set
//! by scripts/test) a missing URL is a failure, so CI cannot skip it.

use sluice_storage::catalog::{conformance, sql::SqlCatalog};

#[tokio::test]
async fn sqlite_catalog_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/catalog.db", dir.path().display());
    let catalog = SqlCatalog::connect(&url)
        .await
        .expect("open sqlite catalog");
    conformance::run(&catalog).await;
    catalog.close().await;
    // Reopening the same file finds the schema in place.
    let again = SqlCatalog::connect(&url)
        .await
        .expect("reopen sqlite catalog");
    conformance::run(&again).await;
}

#[tokio::test]
async fn postgres_catalog_conforms() {
    let Ok(url) = std::env::var("SLUICE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("SLUICE_REQUIRE_POSTGRES").is_err(),
            "SLUICE_REQUIRE_POSTGRES is set but SLUICE_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipping: SLUICE_TEST_POSTGRES_URL is not set");
        return;
    };
    let catalog = SqlCatalog::connect(&url)
        .await
        .expect("open postgres catalog");
    conformance::run(&catalog).await;
}
