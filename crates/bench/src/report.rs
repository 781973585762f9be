//! The benchmark's result and its two renderings: a short text report and one
//! JSON object per run (hand-formatted), plus latency summaries from
//! `hdrhistogram` histograms recorded in microseconds.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::disk::DiskProbe;

/// Highest value a latency histogram tracks: one hour in microseconds.
const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// A histogram for latencies in microseconds, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_max(HISTOGRAM_MAX_US, 3).expect("valid histogram bounds")
}

/// A setting value echoed in the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(u64),
    Null,
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Int(n)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Percentiles of one latency histogram, in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Latency {
    /// What was measured, for the text report.
    pub label: &'static str,
    /// The JSON key the summary goes under.
    pub key: &'static str,
    pub samples: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Latency {
    /// Summarises `hist`; `None` when it recorded nothing.
    pub fn from_histogram(
        label: &'static str,
        key: &'static str,
        hist: &Histogram<u64>,
    ) -> Option<Self> {
        if hist.is_empty() {
            return None;
        }
        Some(Latency {
            label,
            key,
            samples: hist.len(),
            mean_us: hist.mean(),
            p50_us: hist.value_at_quantile(0.50),
            p99_us: hist.value_at_quantile(0.99),
            p999_us: hist.value_at_quantile(0.999),
            max_us: hist.max(),
        })
    }
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// `produce` or `consume`.
    pub mode: &'static str,
    pub topic: String,
    /// Settings echoed back (partitions, acks, compression, ...), in order.
    pub settings: Vec<(&'static str, Value)>,
    /// Records asked for; `None` when consuming until idle.
    pub requested: Option<u64>,
    /// Records acknowledged (produce) or received (consume).
    pub records: u64,
    /// Records that failed, or consumer errors.
    pub errors: u64,
    /// Value bytes of `records`.
    pub bytes: u64,
    /// Time the throughput figures are computed over.
    pub elapsed: Duration,
    pub latency: Option<Latency>,
    pub disk: Option<DiskProbe>,
    /// Distinct error messages with their counts (the first few).
    pub error_samples: Vec<(String, u64)>,
    /// A remark such as why consuming stopped.
    pub note: Option<String>,
}

impl Report {
    /// A report with no records, no latency and no disk figure yet.
    pub fn new(mode: &'static str, topic: &str) -> Self {
        Report {
            mode,
            topic: topic.to_string(),
            settings: Vec::new(),
            requested: None,
            records: 0,
            errors: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
            latency: None,
            disk: None,
            error_samples: Vec::new(),
            note: None,
        }
    }

    /// Value throughput in MB/s (10^6 bytes per second).
    pub fn mb_per_s(&self) -> f64 {
        per_second(self.bytes as f64 / 1e6, self.elapsed)
    }

    pub fn records_per_s(&self) -> f64 {
        per_second(self.records as f64, self.elapsed)
    }

    /// Measured MB/s over the disk's fdatasync'd write MB/s.
    pub fn disk_ratio(&self) -> Option<f64> {
        let disk = self.disk.as_ref()?.mb_per_s();
        (disk > 0.0).then(|| self.mb_per_s() / disk)
    }

    /// No errors, and every requested record (or, without a target, at least one).
    pub fn is_success(&self) -> bool {
        self.errors == 0 && self.records >= self.requested.unwrap_or(1)
    }

    /// The human-readable report, one figure per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut header = format!("{} topic={}", self.mode, self.topic);
        for (key, value) in &self.settings {
            let value = match value {
                Value::Str(s) => s.clone(),
                Value::Int(n) => n.to_string(),
                Value::Null => "-".to_string(),
            };
            let _ = write!(header, " {key}={value}");
        }
        let _ = writeln!(out, "{header}");
        let requested = self.requested.map_or(String::new(), |n| format!(" of {n}"));
        let _ = writeln!(
            out,
            "  records     {}{requested} ok, {} errors",
            self.records, self.errors
        );
        let _ = writeln!(out, "  elapsed     {:.3} s", self.elapsed.as_secs_f64());
        let _ = writeln!(
            out,
            "  throughput  {:.2} MB/s, {:.0} records/s",
            self.mb_per_s(),
            self.records_per_s()
        );
        if let Some(l) = &self.latency {
            let _ = writeln!(
                out,
                "  latency     p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms, mean {} ms ({}, {} samples)",
                ms(l.p50_us as f64),
                ms(l.p99_us as f64),
                ms(l.p999_us as f64),
                ms(l.max_us as f64),
                ms(l.mean_us),
                l.label,
                l.samples
            );
        }
        match &self.disk {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "  disk        {:.2} MB/s fdatasync'd sequential write ({} MiB in 1 MiB blocks, {}, in {})",
                    d.mb_per_s(),
                    d.bytes >> 20,
                    if d.direct { "O_DIRECT" } else { "through the page cache" },
                    d.dir.display()
                );
            }
            None => {
                let _ = writeln!(out, "  disk        not probed");
            }
        }
        if let Some(ratio) = self.disk_ratio() {
            let _ = writeln!(
                out,
                "  vs disk     {ratio:.3} ({:.1}% of the disk's write bandwidth)",
                ratio * 100.0
            );
        }
        for (message, count) in &self.error_samples {
            let _ = writeln!(out, "  error       {count} x {message}");
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "  note        {note}");
        }
        out
    }

    /// One JSON object on one line with every figure.
    pub fn to_json(&self) -> String {
        let mut o = JsonObject::default();
        o.str("mode", self.mode);
        o.str("topic", &self.topic);
        let mut settings = JsonObject::default();
        for (key, value) in &self.settings {
            match value {
                Value::Str(s) => settings.str(key, s),
                Value::Int(n) => settings.raw(key, n.to_string()),
                Value::Null => settings.raw(key, "null".to_string()),
            }
        }
        o.raw("settings", settings.finish());
        o.raw(
            "requested",
            self.requested.map_or("null".to_string(), |n| n.to_string()),
        );
        o.raw("records", self.records.to_string());
        o.raw("errors", self.errors.to_string());
        o.raw("bytes", self.bytes.to_string());
        o.num("elapsed_s", self.elapsed.as_secs_f64());
        o.num("mb_per_s", self.mb_per_s());
        o.num("records_per_s", self.records_per_s());
        if let Some(l) = &self.latency {
            let mut lat = JsonObject::default();
            lat.raw("samples", l.samples.to_string());
            lat.num("mean", l.mean_us);
            lat.raw("p50", l.p50_us.to_string());
            lat.raw("p99", l.p99_us.to_string());
            lat.raw("p999", l.p999_us.to_string());
            lat.raw("max", l.max_us.to_string());
            o.raw(l.key, lat.finish());
        }
        match &self.disk {
            Some(d) => {
                o.str("disk_dir", &d.dir.display().to_string());
                o.raw("disk_probe_bytes", d.bytes.to_string());
                o.raw("disk_direct", d.direct.to_string());
                o.num("disk_mb_per_s", d.mb_per_s());
            }
            None => {
                o.raw("disk_direct", "null".to_string());
                o.raw("disk_mb_per_s", "null".to_string());
            }
        }
        match self.disk_ratio() {
            Some(r) => o.num("ratio_to_disk", r),
            None => o.raw("ratio_to_disk", "null".to_string()),
        }
        let samples: Vec<String> = self
            .error_samples
            .iter()
            .map(|(message, count)| {
                let mut e = JsonObject::default();
                e.str("error", message);
                e.raw("count", count.to_string());
                e.finish()
            })
            .collect();
        o.raw("error_samples", format!("[{}]", samples.join(",")));
        match &self.note {
            Some(note) => o.str("note", note),
            None => o.raw("note", "null".to_string()),
        }
        o.raw("ok", self.is_success().to_string());
        o.finish()
    }
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        amount / secs
    } else {
        0.0
    }
}

/// Microseconds as milliseconds with microsecond precision.
fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

/// Builds a JSON object member by member.
#[derive(Default)]
struct JsonObject {
    members: Vec<String>,
}

impl JsonObject {
    fn raw(&mut self, key: &str, json: String) {
        self.members.push(format!("{}:{json}", quote(key)));
    }

    fn str(&mut self, key: &str, value: &str) {
        self.raw(key, quote(value));
    }

    /// A float with 3 decimals; non-finite values become `null`.
    fn num(&mut self, key: &str, value: f64) {
        let json = if value.is_finite() {
            format!("{value:.3}")
        } else {
            "null".to_string()
        };
        self.raw(key, json);
    }

    fn finish(self) -> String {
        format!("{{{}}}", self.members.join(","))
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn sample() -> Report {
        let mut hist = latency_histogram();
        for us in 1..=1000 {
            hist.record(us).unwrap();
        }
        let mut report = Report::new("produce", "bench");
        report.settings = vec![
            ("partitions", Value::from(8)),
            ("acks", Value::from("all")),
            ("rate", Value::from(None::<u64>)),
        ];
        report.requested = Some(2000);
        report.records = 2000;
        report.bytes = 2_000_000;
        report.elapsed = Duration::from_millis(500);
        report.latency = Latency::from_histogram("send to delivery report", "latency_us", &hist);
        report.disk = Some(DiskProbe {
            dir: PathBuf::from("/data"),
            bytes: 256 << 20,
            elapsed: Duration::from_secs(1),
            direct: true,
        });
        report
    }

    #[test]
    fn text_report_has_every_figure() {
        let text = sample().to_text();
        assert!(
            text.starts_with("produce topic=bench partitions=8 acks=all rate=-\n"),
            "{text}"
        );
        assert!(
            text.contains("records     2000 of 2000 ok, 0 errors"),
            "{text}"
        );
        assert!(
            text.contains("throughput  4.00 MB/s, 4000 records/s"),
            "{text}"
        );
        assert!(
            text.contains("p50 0.500 ms, p99 0.990 ms, p99.9 0.999 ms, max 1.000 ms"),
            "{text}"
        );
        assert!(
            text.contains("disk        268.44 MB/s fdatasync'd sequential write (256 MiB in 1 MiB blocks, O_DIRECT, in /data)"),
            "{text}"
        );
        assert!(text.contains("vs disk     0.015 (1.5% of"), "{text}");
    }

    #[test]
    fn json_report_is_one_object_with_every_figure() {
        let mut report = sample();
        report.errors = 2;
        report.error_samples = vec![("Broker: \"timed out\"\n".to_string(), 2)];
        let json = report.to_json();
        assert!(!json.contains('\n'));
        assert!(json.starts_with(r#"{"mode":"produce","topic":"bench","settings":{"partitions":8,"acks":"all","rate":null},"requested":2000,"records":2000,"errors":2,"bytes":2000000,"elapsed_s":0.500,"mb_per_s":4.000,"records_per_s":4000.000,"latency_us":{"samples":1000,"mean":500.500,"p50":500,"p99":990,"p999":999,"max":1000},"#), "{json}");
        assert!(
            json.contains(r#""disk_direct":true,"disk_mb_per_s":268.435,"ratio_to_disk":0.015,"#),
            "{json}"
        );
        assert!(
            json.contains(r#""error_samples":[{"error":"Broker: \"timed out\"\n","count":2}]"#),
            "{json}"
        );
        assert!(json.ends_with(r#""note":null,"ok":false}"#), "{json}");
    }

    #[test]
    fn empty_run_has_zero_rates_and_fails() {
        let report = Report::new("consume", "t");
        assert_eq!(report.mb_per_s(), 0.0);
        assert_eq!(report.records_per_s(), 0.0);
        assert!(report.disk_ratio().is_none());
        assert!(!report.is_success());
        assert!(report
            .to_json()
            .contains(r#""disk_direct":null,"disk_mb_per_s":null,"ratio_to_disk":null"#));
    }

    #[test]
    fn a_probe_through_the_page_cache_says_so() {
        let mut report = sample();
        if let Some(d) = report.disk.as_mut() {
            d.direct = false;
        }
        let text = report.to_text();
        assert!(
            text.contains("(256 MiB in 1 MiB blocks, through the page cache, in /data)"),
            "{text}"
        );
        assert!(report.to_json().contains(r#""disk_direct":false,"#));
    }
}
