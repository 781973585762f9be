//! Tenant names: generated like managed Kafka's (`wabash-58779`), or chosen
//! by the operator within the rules for topic names, so that the prefix
//! `<name>.` can start topic and group names.

const RIVERS: &[&str] = &[
    "allegheny",
    "amazon",
    "arkansas",
    "brazos",
    "colorado",
    "columbia",
    "congo",
    "cumberland",
    "danube",
    "delaware",
    "fraser",
    "gila",
    "hudson",
    "illinois",
    "kennebec",
    "klamath",
    "mekong",
    "merrimack",
    "missouri",
    "mohawk",
    "niger",
    "ohio",
    "platte",
    "potomac",
    "rhine",
    "rio-grande",
    "sabine",
    "salmon",
    "santee",
    "shenandoah",
    "snake",
    "susquehanna",
    "tennessee",
    "trinity",
    "volga",
    "wabash",
    "willamette",
    "yukon",
    "zambezi",
];

/// A fresh name such as `wabash-58779`.
pub fn generate() -> String {
    let river = RIVERS[rand::random_range(0..RIVERS.len())];
    format!("{river}-{}", rand::random_range(10000..100000))
}

/// Checks an operator-chosen tenant name: 1 to 64 of lower-case ASCII
/// letters, digits and `-`, starting with a letter (no `.` or `_`, so one
/// tenant's prefix can never start another's).
pub fn validate(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if name.is_empty()
        || name.len() > 64
        || !ok_chars
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
    {
        return Err(format!(
            "tenant name `{name}` is not valid: use 1 to 64 lower-case letters, digits and `-`, starting with a letter"
        ));
    }
    Ok(())
}

/// The prefix a tenant's topics and groups carry.
pub fn prefix(tenant: &str) -> String {
    format!("{tenant}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid() {
        for _ in 0..100 {
            let n = generate();
            validate(&n).unwrap();
            assert!(n.rsplit('-').next().unwrap().len() == 5, "{n}");
        }
    }

    #[test]
    fn names_that_could_overlap_prefixes_are_refused() {
        for bad in ["", "a.b", "A", "9lives", "a_b", &"x".repeat(65)] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        validate("acme-prod").unwrap();
    }
}
