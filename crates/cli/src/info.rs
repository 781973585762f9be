//! `sluice info [TENANT]`: a tenant's plan, status and usage (like
//! `heroku kafka:info`), or, for the operator without a tenant, the
//! cluster: brokers, version and usage by tenant.

use serde_json::Value;

use crate::api::{encode_path, print_json, ApiArgs};
use crate::output::{bytes, rate, table, text, time};

pub fn run(tenant: Option<String>, api: &ApiArgs) -> anyhow::Result<()> {
    match api.tenant_or_own(tenant)? {
        Some(t) => tenant_info(&t, api),
        None => cluster(api),
    }
}

fn tenant_info(name: &str, api: &ApiArgs) -> anyhow::Result<()> {
    let body = api.get(&format!("/v1/tenants/{}", encode_path(name)))?;
    if api.json {
        return print_json(&body);
    }
    let u = &body["usage"];
    let rows: Vec<(&str, String)> = vec![
        ("Plan", text(&body["plan"])),
        ("Status", text(&body["status"])),
        ("Version", text(&body["version"])),
        ("Created", time(&body["created_ms"])),
        (
            "Topics",
            format!("{} / {}", text(&u["topics"]), text(&u["max_topics"])),
        ),
        ("Prefix", text(&body["prefix"])),
        (
            "Partitions",
            format!(
                "{} / {}",
                text(&u["partitions"]),
                text(&u["max_partitions"])
            ),
        ),
        (
            "Consumer groups",
            format!("{} / {}", text(&u["groups"]), text(&u["max_groups"])),
        ),
        ("Credentials", text(&u["credentials"])),
        ("Messages", format!("{}/s", rate(&u["messages_in_per_sec"]))),
        (
            "Traffic",
            format!(
                "{}/s in / {}/s out",
                bytes(&u["bytes_in_per_sec"]),
                bytes(&u["bytes_out_per_sec"])
            ),
        ),
        (
            "Data size",
            format!(
                "{} / {} ({:.2}%)",
                bytes(&u["data_bytes"]),
                bytes(&u["capacity_bytes"]),
                u["capacity_percent"].as_f64().unwrap_or(0.0)
            ),
        ),
    ];
    println!("=== {}", text(&body["name"]));
    print_fields(&rows);
    Ok(())
}

/// `Label:  value` lines, values aligned.
fn print_fields(rows: &[(&str, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    for (k, v) in rows {
        println!("{:<width$} {v}", format!("{k}:"));
    }
}

fn cluster(api: &ApiArgs) -> anyhow::Result<()> {
    let body = api.get("/v1/cluster")?;
    if api.json {
        return print_json(&body);
    }
    let t = &body["totals"];
    println!("=== Sluice {}", text(&body["version"]));
    print_fields(&[
        (
            "Mode",
            if body["multi_tenant"].as_bool() == Some(true) {
                "multi-tenant".into()
            } else {
                "open (single tenant)".into()
            },
        ),
        ("Topics", text(&t["topics"])),
        ("Partitions", text(&t["partitions"])),
        ("Data size", bytes(&t["data_bytes"])),
        ("Messages", format!("{}/s", rate(&t["messages_in_per_sec"]))),
        (
            "Traffic",
            format!(
                "{}/s in / {}/s out",
                bytes(&t["bytes_in_per_sec"]),
                bytes(&t["bytes_out_per_sec"])
            ),
        ),
    ]);
    let mut brokers = table(&["NODE", "KAFKA (SASL/PLAINTEXT)", "KAFKA (TLS)", "VERSION"]);
    for b in body["brokers"].as_array().into_iter().flatten() {
        brokers.add_row(vec![
            text(&b["node_id"]),
            text(&b["kafka_plaintext_url"]),
            text(&b["kafka_url"]),
            text(&b["version"]),
        ]);
    }
    println!("\n{brokers}");
    let tenants: &[Value] = body["tenants"].as_array().map_or(&[], Vec::as_slice);
    if body["multi_tenant"].as_bool() == Some(true) {
        if tenants.is_empty() {
            println!("\nNo tenants.");
            return Ok(());
        }
        let mut t = table(&[
            "TENANT",
            "PLAN",
            "STATUS",
            "TOPICS",
            "PARTITIONS",
            "DATA SIZE",
            "CAPACITY",
            "IN",
            "OUT",
        ]);
        for u in tenants {
            t.add_row(vec![
                text(&u["name"]),
                text(&u["plan"]),
                text(&u["status"]),
                text(&u["topics"]),
                text(&u["partitions"]),
                bytes(&u["data_bytes"]),
                format!("{:.2}%", u["capacity_percent"].as_f64().unwrap_or(0.0)),
                format!("{}/s", bytes(&u["bytes_in_per_sec"])),
                format!("{}/s", bytes(&u["bytes_out_per_sec"])),
            ]);
        }
        println!("\n{t}");
    }
    Ok(())
}
