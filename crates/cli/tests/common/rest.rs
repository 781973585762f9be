//! The broker's REST API from a test's side: raw requests (so a test sees
//! exactly the status and JSON body the broker sends, refusals included),
//! the operator token, and operator calls such as creating a tenant.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::Broker;

/// One HTTP request with an empty body to `b`'s HTTP listener, with
/// `bearer` as the `Authorization: Bearer` token if given; the status code
/// and the JSON body (`Value::Null` if the body is not JSON).
pub fn http(b: &Broker, method: &str, path: &str, bearer: Option<&str>) -> (u16, Value) {
    http_with_body(b, method, path, bearer, "")
}

/// As [`http`], sending `body` (empty for none) as `application/json`.
pub fn http_with_body(
    b: &Broker,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", b.http_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// The operator token a broker writes to `<data_dir>/operator.token`,
/// without the trailing newline.
pub fn operator_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("operator.token"))
        .unwrap()
        .trim()
        .to_string()
}

/// One REST call as the operator, with `body` as JSON (`Value::Null` sends
/// no body); it must succeed (2xx). The JSON answer.
pub fn as_operator(b: &Broker, method: &str, path: &str, body: &Value) -> Value {
    let token = operator_token(&b.data_dir);
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, answer) = http_with_body(b, method, path, Some(&token), &text);
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

/// Creates a tenant through `POST /v1/tenants` as the operator, on `plan`
/// or the broker's default plan. The answer: `tenant`, its first
/// `credential` (username = the tenant's name, password) and `config`.
pub fn create_tenant(b: &Broker, name: &str, plan: Option<&str>) -> Value {
    let mut body = json!({ "name": name });
    if let Some(plan) = plan {
        body["plan"] = plan.into();
    }
    as_operator(b, "POST", "/v1/tenants", &body)
}
