//! Who a connection authenticated as.

/// An authenticated principal. Tenancy is decided by the credential the
/// principal logged in with, never by anything the client says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `User:<username>`, as ACL bindings name it.
    pub name: String,
    /// The tenant owning the credential; `None` for operators.
    pub tenant: Option<String>,
    /// Operates everything: every check passes.
    pub superuser: bool,
}

impl Principal {
    /// The principal of connections to an open broker (`sluice dev` without
    /// `--multi-tenant`): Kafka's `User:ANONYMOUS`, allowed everything.
    pub fn anonymous() -> Principal {
        Principal {
            name: "User:ANONYMOUS".into(),
            tenant: None,
            superuser: true,
        }
    }

    pub fn user(username: &str) -> String {
        format!("User:{username}")
    }
}
