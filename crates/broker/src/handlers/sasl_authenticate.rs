//! SaslAuthenticate: one step of the mechanism SaslHandshake chose. PLAIN
//! takes one step; SCRAM two. A failure answers SASL_AUTHENTICATION_FAILED
//! (without saying whether the user exists) and closes the connection, as
//! Kafka does; the reason is logged.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use sluice_protocol::ErrorCode;
use sluice_tenancy::scram::ScramExchange;
use sluice_tenancy::Principal;

use super::{count_error, text, RequestMeta};
use crate::context::BrokerContext;
use crate::session::{SaslState, Session};

pub fn handle(
    ctx: &BrokerContext,
    session: &mut Session,
    r: SaslAuthenticateRequest,
    meta: RequestMeta,
) -> SaslAuthenticateResponse {
    if session.principal.is_some() {
        // An open listener, or already authenticated: answered, not fatal.
        return SaslAuthenticateResponse::default()
            .with_error_code(count_error(meta, ErrorCode::IllegalSaslState))
            .with_error_message(Some(text(
                "this connection needs no (further) authentication",
            )));
    }
    let ip = session.peer.ip();
    if let Err(wait) = ctx.auth_failures.check(ip) {
        return fail(
            session,
            meta,
            format!("too many failed authentications from {ip}; try again in {wait} s"),
        );
    }
    let state = std::mem::replace(&mut session.sasl, SaslState::Done);
    let outcome = match state {
        SaslState::PlainChosen => plain(ctx, &r.auth_bytes).map(|p| (Some(p), Bytes::new())),
        SaslState::ScramChosen(mech) => {
            match ScramExchange::start(mech, &r.auth_bytes, |user| {
                ctx.tenancy.scram_keys(mech, user)
            }) {
                Ok((exchange, reply)) => {
                    session.sasl = SaslState::ScramStarted(Box::new(exchange));
                    Ok((None, Bytes::from(reply)))
                }
                Err(e) => Err(e.to_string()),
            }
        }
        SaslState::ScramStarted(exchange) => match exchange.finish(&r.auth_bytes) {
            Ok((user, reply)) => match ctx.tenancy.principal(&user) {
                Some(p) => Ok((Some(p), Bytes::from(reply))),
                None => Err(format!("user `{user}` was removed during authentication")),
            },
            Err(e) => Err(e.to_string()),
        },
        SaslState::Start | SaslState::Done => {
            session.closing = true;
            return SaslAuthenticateResponse::default()
                .with_error_code(count_error(meta, ErrorCode::IllegalSaslState))
                .with_error_message(Some(text(
                    "SaslAuthenticate must follow a SaslHandshake, once per connection",
                )));
        }
    };
    match outcome {
        Ok((principal, reply)) => {
            if let Some(p) = principal {
                match ctx.quotas.open_connection(&p) {
                    Ok(slot) => session.connection_slot = slot,
                    Err(message) => {
                        tracing::warn!(peer = %session.peer, principal = %p.name, %message, "connection refused");
                        return fail(session, meta, message);
                    }
                }
                tracing::info!(peer = %session.peer, principal = %p.name, listener = %session.listener.name, "authenticated");
                session.principal = Some(p);
            }
            SaslAuthenticateResponse::default().with_auth_bytes(reply)
        }
        Err(reason) => {
            ctx.auth_failures.record(ip);
            tracing::warn!(peer = %session.peer, %reason, "authentication failed");
            fail(
                session,
                meta,
                "Authentication failed: invalid username or password".into(),
            )
        }
    }
}

fn fail(session: &mut Session, meta: RequestMeta, message: String) -> SaslAuthenticateResponse {
    session.closing = true;
    session.sasl = SaslState::Done;
    SaslAuthenticateResponse::default()
        .with_error_code(count_error(meta, ErrorCode::SaslAuthenticationFailed))
        .with_error_message(Some(text(message)))
}

/// PLAIN (RFC 4616): `authzid NUL authcid NUL password`; an authzid other
/// than the user itself is refused.
fn plain(ctx: &BrokerContext, bytes: &[u8]) -> Result<Principal, String> {
    let mut parts = bytes.split(|b| *b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed PLAIN message".into());
    };
    let utf8 = |b: &[u8]| {
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| "PLAIN message is not UTF-8".to_string())
    };
    let (authzid, user, password) = (utf8(authzid)?, utf8(user)?, utf8(password)?);
    if !authzid.is_empty() && authzid != user {
        return Err(format!("user `{user}` may not act as `{authzid}`"));
    }
    ctx.tenancy
        .authenticate_plain(&user, &password)
        .ok_or_else(|| format!("wrong password or unknown user `{user}`"))
}
