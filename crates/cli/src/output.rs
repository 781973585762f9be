//! How operator commands print: tables, cells, times and `KEY=value` lines.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde_json::Value;

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}

/// A JSON value for a table cell: strings bare, null as `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Bytes in binary units as people read them: `512 B`, `1.5 MB`, `64 GB`.
pub fn bytes(v: &Value) -> String {
    let Some(n) = v.as_f64() else {
        return text(v);
    };
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut n = n.max(0.0);
    let mut unit = 0;
    while n >= 1024.0 && unit < UNITS.len() - 1 {
        n /= 1024.0;
        unit += 1;
    }
    if unit == 0 || n >= 100.0 || n.fract() < 0.05 {
        format!("{} {}", n.round(), UNITS[unit])
    } else {
        format!("{n:.1} {}", UNITS[unit])
    }
}

/// A per-second rate: whole numbers bare, small ones with one decimal.
pub fn rate(v: &Value) -> String {
    match v.as_f64() {
        Some(r) if r.fract() == 0.0 || r >= 100.0 => format!("{}", r.round()),
        Some(r) => format!("{r:.1}"),
        None => text(v),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn time(ms: &Value) -> String {
    let Some(ms) = ms.as_i64() else {
        return text(ms);
    };
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `KEY=value` lines from a JSON object, values quoted when needed so that
/// both `eval "$(sluice config NAME)"` and dotenv files read them back
/// (PEM blocks become one double-quoted, multi-line value).
pub fn env_lines(vars: &Value) -> String {
    let mut out = String::new();
    if let Some(map) = vars.as_object() {
        for (key, value) in map {
            out.push_str(key);
            out.push('=');
            out.push_str(&quote(&text_or_empty(value)));
            out.push('\n');
        }
    }
    out
}

fn text_or_empty(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => text(other),
    }
}

fn quote(value: &str) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._:,/@+=-".contains(c));
    if plain {
        return value.to_string();
    }
    let mut q = String::from("\"");
    for c in value.trim_end_matches('\n').chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(bytes(&Value::from(0)), "0 B");
        assert_eq!(bytes(&Value::from(512)), "512 B");
        assert_eq!(bytes(&Value::from(1536)), "1.5 KB");
        assert_eq!(bytes(&Value::from(1_572_864)), "1.5 MB");
        assert_eq!(bytes(&Value::from(68_719_476_736_u64)), "64 GB");
        assert_eq!(rate(&Value::from(12.0)), "12");
        assert_eq!(rate(&Value::from(0.3)), "0.3");
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(time(&Value::from(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            time(&Value::from(1_709_210_096_000_i64)),
            "2024-02-29 12:34:56 UTC"
        );
    }

    #[test]
    fn values_are_quoted_only_when_needed() {
        let vars = serde_json::json!({
            "A": "host:9092",
            "B": "",
            "C": "-----BEGIN X-----\nab/+=\n-----END X-----\n",
            "D": "a\"$b",
        });
        assert_eq!(
            env_lines(&vars),
            "A=host:9092\nB=\nC=\"-----BEGIN X-----\nab/+=\n-----END X-----\"\nD=\"a\\\"\\$b\"\n"
        );
    }
}
