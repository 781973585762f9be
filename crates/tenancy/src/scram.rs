//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server side,
//! and the salted keys a credential is stored as. A password is never kept:
//! only the salt, the iteration count, StoredKey and ServerKey. SASL PLAIN
//! checks a password against the same keys.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's minimum, and what its tools use by default.
pub const ITERATIONS: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl Mechanism {
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "SCRAM-SHA-256" => Some(Mechanism::Sha256),
            "SCRAM-SHA-512" => Some(Mechanism::Sha512),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail.
        match self {
            Mechanism::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("hmac accepts any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Mechanism::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("hmac accepts any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => Sha256::digest(data).to_vec(),
            Mechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Mechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, iterations)
                    .to_vec()
            }
            Mechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), salt, iterations)
                    .to_vec()
            }
        }
    }
}

/// What a credential stores for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramKeys {
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    pub iterations: u32,
    #[serde(with = "b64")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64")]
    pub server_key: Vec<u8>,
}

impl ScramKeys {
    /// Keys for a password with a fresh random salt.
    pub fn derive(mechanism: Mechanism, password: &str) -> ScramKeys {
        let salt: [u8; 24] = rand::random();
        ScramKeys::with_salt(mechanism, password, &salt, ITERATIONS)
    }

    fn with_salt(mechanism: Mechanism, password: &str, salt: &[u8], iterations: u32) -> ScramKeys {
        let salted = mechanism.salted_password(password, salt, iterations);
        let client_key = mechanism.hmac(&salted, b"Client Key");
        ScramKeys {
            salt: salt.to_vec(),
            iterations,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(&salted, b"Server Key"),
        }
    }

    /// Whether `password` is the one these keys were derived from.
    pub fn verify_password(&self, mechanism: Mechanism, password: &str) -> bool {
        let again = ScramKeys::with_salt(mechanism, password, &self.salt, self.iterations);
        constant_time_eq(&again.stored_key, &self.stored_key)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a SCRAM exchange failed. The client is told only that
/// authentication failed; the reason goes to the broker's log.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("SCRAM channel binding is not supported")]
    ChannelBinding,
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    #[error("wrong password for user `{0}`")]
    BadProof(String),
}

/// A SCRAM exchange after the server's first message.
#[derive(Debug)]
pub struct ScramExchange {
    mechanism: Mechanism,
    username: String,
    keys: ScramKeys,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

impl ScramExchange {
    /// Reads the client's first message, looks its user up, and returns the
    /// exchange with the server's first message.
    pub fn start(
        mechanism: Mechanism,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramKeys>,
    ) -> Result<(ScramExchange, Vec<u8>), ScramError> {
        let text =
            std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header: cbind flag, optional authzid, then the bare message.
        let mut parts = text.splitn(3, ',');
        let cbind = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
        let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
        let bare = parts
            .next()
            .ok_or(ScramError::Malformed("no client-first-message-bare"))?;
        match cbind {
            "n" | "y" => {}
            c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad channel binding flag")),
        }
        let gs2_header = format!("{cbind},{authzid},");
        let mut username = None;
        let mut client_nonce = None;
        for attr in bare.split(',') {
            if let Some(v) = attr.strip_prefix("n=") {
                username = Some(unescape(v)?);
            } else if let Some(v) = attr.strip_prefix("r=") {
                client_nonce = Some(v);
            } else if attr.starts_with("m=") {
                return Err(ScramError::Malformed("mandatory extension not supported"));
            }
        }
        let username = username.ok_or(ScramError::Malformed("no username"))?;
        let client_nonce = client_nonce
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("no client nonce"))?;
        let keys = lookup(&username).ok_or_else(|| ScramError::UnknownUser(username.clone()))?;
        let server_nonce: [u8; 18] = rand::random();
        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&keys.salt),
            keys.iterations
        );
        let reply = server_first.clone().into_bytes();
        Ok((
            ScramExchange {
                mechanism,
                username,
                keys,
                gs2_header,
                client_first_bare: bare.to_string(),
                server_first,
                nonce,
            },
            reply,
        ))
    }

    /// Checks the client's proof; on success returns the authenticated
    /// username and the server's final message.
    pub fn finish(self, client_final: &[u8]) -> Result<(String, Vec<u8>), ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for attr in without_proof.split(',') {
            if let Some(v) = attr.strip_prefix("c=") {
                binding = Some(v);
            } else if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            }
        }
        if binding != Some(B64.encode(&self.gs2_header).as_str()) {
            return Err(ScramError::Malformed(
                "channel binding does not match the gs2 header",
            ));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let m = self.mechanism;
        let client_signature = m.hmac(&self.keys.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::BadProof(self.username));
        }
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !constant_time_eq(&m.hash(&client_key), &self.keys.stored_key) {
            return Err(ScramError::BadProof(self.username));
        }
        let server_signature = m.hmac(&self.keys.server_key, auth_message.as_bytes());
        Ok((
            self.username,
            format!("v={}", B64.encode(server_signature)).into_bytes(),
        ))
    }
}

/// saslname: `=2C` is a comma and `=3D` an equals sign.
fn unescape(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in username")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

mod b64 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client side, written from RFC 5802, to drive the server.
    fn client_proof(m: Mechanism, password: &str, first_bare: &str, server_first: &str) -> String {
        let attrs: std::collections::HashMap<&str, &str> = server_first
            .split(',')
            .filter_map(|a| a.split_once('='))
            .collect();
        let salt = B64.decode(attrs["s"]).unwrap();
        let iterations: u32 = attrs["i"].parse().unwrap();
        let salted = m.salted_password(password, &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored = m.hash(&client_key);
        let without_proof = format!("c={},r={}", B64.encode("n,,"), attrs["r"]);
        let auth = format!("{first_bare},{server_first},{without_proof}");
        let sig = m.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        format!("{without_proof},p={}", B64.encode(proof))
    }

    fn exchange(m: Mechanism, stored_for: &str, password: &str) -> Result<String, ScramError> {
        let keys = ScramKeys::derive(m, stored_for);
        let bare = "n=al=2Cice,r=fyko+d2lbbFgONRv9qkxdawL";
        let (ex, server_first) = ScramExchange::start(m, format!("n,,{bare}").as_bytes(), |u| {
            assert_eq!(u, "al,ice");
            Some(keys.clone())
        })?;
        let server_first = String::from_utf8(server_first).unwrap();
        assert!(server_first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
        let last = client_proof(m, password, bare, &server_first);
        ex.finish(last.as_bytes()).map(|(user, v)| {
            assert!(v.starts_with(b"v="));
            user
        })
    }

    #[test]
    fn both_mechanisms_accept_the_right_password_only() {
        for m in [Mechanism::Sha256, Mechanism::Sha512] {
            assert_eq!(exchange(m, "pencil", "pencil").unwrap(), "al,ice");
            assert_eq!(
                exchange(m, "pencil", "pen").unwrap_err(),
                ScramError::BadProof("al,ice".into())
            );
        }
    }

    #[test]
    fn rfc_7677_test_vector_keys() {
        // RFC 7677 section 3: user "user", password "pencil".
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let keys = ScramKeys::with_salt(Mechanism::Sha256, "pencil", &salt, 4096);
        let ex = ScramExchange {
            mechanism: Mechanism::Sha256,
            username: "user".into(),
            keys,
            gs2_header: "n,,".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        };
        let (_, v) = ex
            .finish(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        assert_eq!(v, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn plain_passwords_check_against_stored_keys() {
        let keys = ScramKeys::derive(Mechanism::Sha512, "s3cret");
        assert!(keys.verify_password(Mechanism::Sha512, "s3cret"));
        assert!(!keys.verify_password(Mechanism::Sha512, "s3cret "));
    }

    #[test]
    fn malformed_messages_are_refused() {
        let lookup = |_: &str| Some(ScramKeys::derive(Mechanism::Sha256, "x"));
        for bad in [
            &b""[..],
            b"n,,",
            b"x,,n=a,r=b",
            b"n,,n=a",
            b"n,,n=a=,r=b",
            b"p=tls,,n=a,r=b",
            &[0xff, 0xfe],
        ] {
            assert!(
                ScramExchange::start(Mechanism::Sha256, bad, lookup).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(
            ScramExchange::start(Mechanism::Sha256, b"n,,n=nobody,r=abc", |_| None).unwrap_err(),
            ScramError::UnknownUser("nobody".into())
        );
    }
}
