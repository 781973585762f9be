//! SaslHandshake: the client picks a mechanism; SaslAuthenticate carries
//! the exchange.

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use sluice_protocol::ErrorCode;
use sluice_tenancy::scram::Mechanism;

use super::{count_error, text, RequestMeta};
use crate::session::{SaslState, Session};

pub const MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

pub fn handle(
    session: &mut Session,
    r: SaslHandshakeRequest,
    meta: RequestMeta,
) -> SaslHandshakeResponse {
    let mechanisms = MECHANISMS.iter().map(|m| text(*m)).collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    if session.principal.is_some() {
        // An open listener, or already authenticated: answered, not fatal.
        return response.with_error_code(count_error(meta, ErrorCode::IllegalSaslState));
    }
    if !matches!(session.sasl, SaslState::Start) {
        session.closing = true;
        return response.with_error_code(count_error(meta, ErrorCode::IllegalSaslState));
    }
    session.sasl = match r.mechanism.as_str() {
        "PLAIN" => SaslState::PlainChosen,
        m => match Mechanism::from_name(m) {
            Some(mech) => SaslState::ScramChosen(mech),
            None => {
                return response
                    .with_error_code(count_error(meta, ErrorCode::UnsupportedSaslMechanism))
            }
        },
    };
    response
}
