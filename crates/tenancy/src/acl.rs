//! ACLs in Kafka's model: a binding allows or denies one principal, from one
//! host, one operation on resources matched by a literal or prefixed
//! pattern. A deny wins over any allow; with no binding nothing is allowed.
//! Numeric codes are Kafka's, so bindings travel unchanged through the
//! CreateAcls, DescribeAcls and DeleteAcls APIs.

use std::fmt;

use serde::{Deserialize, Serialize};
use sluice_storage::catalog::AclRow;

macro_rules! kafka_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $code:expr, $text:expr;)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($variant),* }

        impl $name {
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code),* }
            }
            /// The variant of a Kafka code; `None` for codes Kafka does not define.
            pub fn from_code(code: i8) -> Option<$name> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }
            /// Kafka's upper-case name, as its tools print it.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum!(
    /// What kind of thing a binding is about.
    ResourceType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Topic = 2, "TOPIC";
        Group = 3, "GROUP";
        Cluster = 4, "CLUSTER";
        TransactionalId = 5, "TRANSACTIONAL_ID";
        DelegationToken = 6, "DELEGATION_TOKEN";
        User = 7, "USER";
    }
);

kafka_enum!(
    /// How a binding's resource name matches (ANY and MATCH only in filters).
    PatternType {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Match = 2, "MATCH";
        Literal = 3, "LITERAL";
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    Operation {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        All = 2, "ALL";
        Read = 3, "READ";
        Write = 4, "WRITE";
        Create = 5, "CREATE";
        Delete = 6, "DELETE";
        Alter = 7, "ALTER";
        Describe = 8, "DESCRIBE";
        ClusterAction = 9, "CLUSTER_ACTION";
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        AlterConfigs = 11, "ALTER_CONFIGS";
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        CreateTokens = 13, "CREATE_TOKENS";
        DescribeTokens = 14, "DESCRIBE_TOKENS";
    }
);

kafka_enum!(
    Permission {
        Unknown = 0, "UNKNOWN";
        Any = 1, "ANY";
        Deny = 2, "DENY";
        Allow = 3, "ALLOW";
    }
);

/// The one cluster resource's name, as Kafka names it.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// A resource name matching any literal binding: `*`.
pub const WILDCARD: &str = "*";

/// One ACL binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:<name>`, or `User:*` for every principal.
    pub principal: String,
    /// A client address, or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// An allow binding from any host.
    pub fn allow(
        principal: &str,
        resource_type: ResourceType,
        pattern_type: PatternType,
        resource_name: &str,
        operation: Operation,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: resource_name.to_string(),
            pattern_type,
            principal: principal.to_string(),
            host: WILDCARD.to_string(),
            operation,
            permission: Permission::Allow,
        }
    }

    /// Whether the binding is one a broker can store: concrete types (no
    /// ANY or MATCH), a resource name, and a `User:` principal.
    pub fn validate(&self) -> Result<(), String> {
        use ResourceType as R;
        if !matches!(
            self.resource_type,
            R::Topic | R::Group | R::Cluster | R::TransactionalId | R::DelegationToken | R::User
        ) {
            return Err(format!(
                "resource type {} cannot be stored in a binding",
                self.resource_type
            ));
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(format!(
                "pattern type {} cannot be stored in a binding: use LITERAL or PREFIXED",
                self.pattern_type
            ));
        }
        if matches!(self.operation, Operation::Any | Operation::Unknown) {
            return Err(format!(
                "operation {} cannot be stored in a binding",
                self.operation
            ));
        }
        if !matches!(self.permission, Permission::Allow | Permission::Deny) {
            return Err(format!(
                "permission {} cannot be stored in a binding: use ALLOW or DENY",
                self.permission
            ));
        }
        if self.resource_name.is_empty() {
            return Err("the resource name is empty".into());
        }
        if !self.principal.starts_with("User:") || self.principal.len() == 5 {
            return Err(format!(
                "principal `{}` is not of the form User:<name>",
                self.principal
            ));
        }
        if self.host.is_empty() {
            return Err("the host is empty: use `*` for any host".into());
        }
        Ok(())
    }

    /// Whether this binding's resource pattern covers `name`.
    fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
                _ => false,
            }
    }

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == host || self.host == WILDCARD)
    }

    pub fn to_row(&self) -> AclRow {
        AclRow {
            resource_type: self.resource_type.code(),
            resource_name: self.resource_name.clone(),
            pattern_type: self.pattern_type.code(),
            principal: self.principal.clone(),
            host: self.host.clone(),
            operation: self.operation.code(),
            permission: self.permission.code(),
        }
    }

    /// A stored row; `None` if it holds codes this build does not know.
    pub fn from_row(row: &AclRow) -> Option<AclBinding> {
        Some(AclBinding {
            resource_type: ResourceType::from_code(row.resource_type)?,
            resource_name: row.resource_name.clone(),
            pattern_type: PatternType::from_code(row.pattern_type)?,
            principal: row.principal.clone(),
            host: row.host.clone(),
            operation: Operation::from_code(row.operation)?,
            permission: Permission::from_code(row.permission)?,
        })
    }
}

/// Which bindings a DescribeAcls or DeleteAcls request means. `None`
/// fields match anything; ANY types match any type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub resource_name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Kafka's filter semantics: ANY matches every value; MATCH matches the
    /// bindings that would apply to a resource of that name (literal equal
    /// or `*`, and prefixes of it); a given name with LITERAL or PREFIXED
    /// matches that exact stored pattern.
    pub fn matches(&self, b: &AclBinding) -> bool {
        let type_ok =
            self.resource_type == ResourceType::Any || self.resource_type == b.resource_type;
        let name_ok = match (&self.resource_name, self.pattern_type) {
            (None, PatternType::Any) => true,
            (None, p) => p == b.pattern_type,
            (Some(name), PatternType::Match) => b.covers(b.resource_type, name),
            (Some(name), PatternType::Any) => *name == b.resource_name,
            (Some(name), p) => *name == b.resource_name && p == b.pattern_type,
        };
        type_ok
            && name_ok
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == Operation::Any || self.operation == b.operation)
            && (self.permission == Permission::Any || self.permission == b.permission)
    }
}

/// Operations whose allowance also allows `op` (Kafka's implications:
/// READ, WRITE, DELETE or ALTER imply DESCRIBE; ALTER_CONFIGS implies
/// DESCRIBE_CONFIGS), with `op` itself and ALL.
fn allowed_by(op: Operation) -> &'static [Operation] {
    use Operation as O;
    match op {
        O::Describe => &[O::Describe, O::All, O::Read, O::Write, O::Delete, O::Alter],
        O::DescribeConfigs => &[O::DescribeConfigs, O::All, O::AlterConfigs],
        O::Read => &[O::Read, O::All],
        O::Write => &[O::Write, O::All],
        O::Create => &[O::Create, O::All],
        O::Delete => &[O::Delete, O::All],
        O::Alter => &[O::Alter, O::All],
        O::AlterConfigs => &[O::AlterConfigs, O::All],
        O::ClusterAction => &[O::ClusterAction, O::All],
        O::IdempotentWrite => &[O::IdempotentWrite, O::All],
        O::CreateTokens => &[O::CreateTokens, O::All],
        O::DescribeTokens => &[O::DescribeTokens, O::All],
        O::All => &[O::All],
        O::Any | O::Unknown => &[],
    }
}

/// Decides one access: denied by any matching DENY (for the operation or
/// ALL), else allowed by a matching ALLOW of the operation or one implying it.
pub fn permits<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    let relevant = |b: &&AclBinding| b.applies_to(principal, host) && b.covers(resource_type, name);
    let denied = acls.clone().into_iter().filter(relevant).any(|b| {
        b.permission == Permission::Deny
            && (b.operation == operation || b.operation == Operation::All)
    });
    if denied {
        return false;
    }
    let allowing = allowed_by(operation);
    acls.into_iter()
        .filter(relevant)
        .any(|b| b.permission == Permission::Allow && allowing.contains(&b.operation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Operation as O;
    use ResourceType as R;

    fn prefixed(op: Operation) -> AclBinding {
        AclBinding::allow("User:a", R::Topic, PatternType::Prefixed, "wabash-1.", op)
    }

    #[test]
    fn prefixed_bindings_cover_only_their_prefix() {
        let acls = vec![prefixed(O::Read)];
        let can = |op, name: &str| permits(&acls, "User:a", "10.0.0.1", op, R::Topic, name);
        assert!(can(O::Read, "wabash-1.events"));
        assert!(can(O::Describe, "wabash-1.events"), "READ implies DESCRIBE");
        assert!(!can(O::Write, "wabash-1.events"));
        assert!(
            !can(O::Read, "wabash-10.events"),
            "the prefix ends with its dot"
        );
        assert!(!can(O::Read, "events"));
        assert!(!permits(
            &acls,
            "User:b",
            "h",
            O::Read,
            R::Topic,
            "wabash-1.events"
        ));
        assert!(!permits(
            &acls,
            "User:a",
            "h",
            O::Read,
            R::Group,
            "wabash-1.events"
        ));
    }

    #[test]
    fn deny_wins_and_all_covers_every_operation() {
        let mut acls = vec![prefixed(O::All)];
        assert!(permits(
            &acls,
            "User:a",
            "h",
            O::Delete,
            R::Topic,
            "wabash-1.x"
        ));
        assert!(permits(
            &acls,
            "User:a",
            "h",
            O::DescribeConfigs,
            R::Topic,
            "wabash-1.x"
        ));
        acls.push(AclBinding {
            permission: Permission::Deny,
            host: "10.0.0.9".into(),
            pattern_type: PatternType::Literal,
            resource_name: "wabash-1.x".into(),
            ..prefixed(O::Write)
        });
        assert!(!permits(
            &acls,
            "User:a",
            "10.0.0.9",
            O::Write,
            R::Topic,
            "wabash-1.x"
        ));
        assert!(permits(
            &acls,
            "User:a",
            "10.0.0.8",
            O::Write,
            R::Topic,
            "wabash-1.x"
        ));
        assert!(permits(
            &acls,
            "User:a",
            "10.0.0.9",
            O::Read,
            R::Topic,
            "wabash-1.x"
        ));
    }

    #[test]
    fn wildcards_match_any_name_and_principal() {
        let acls = vec![AclBinding::allow(
            "User:*",
            R::Topic,
            PatternType::Literal,
            "*",
            O::Describe,
        )];
        assert!(permits(
            &acls,
            "User:z",
            "h",
            O::Describe,
            R::Topic,
            "anything"
        ));
        assert!(!permits(
            &acls,
            "User:z",
            "h",
            O::Read,
            R::Topic,
            "anything"
        ));
    }

    #[test]
    fn filters_follow_kafka() {
        let b = prefixed(O::Read);
        let any = AclFilter {
            resource_type: R::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: O::Any,
            permission: Permission::Any,
        };
        assert!(any.matches(&b));
        let exact = AclFilter {
            resource_name: Some("wabash-1.".into()),
            pattern_type: PatternType::Prefixed,
            ..any.clone()
        };
        assert!(exact.matches(&b));
        let literal = AclFilter {
            pattern_type: PatternType::Literal,
            ..exact.clone()
        };
        assert!(!literal.matches(&b));
        let matching = AclFilter {
            resource_name: Some("wabash-1.events".into()),
            pattern_type: PatternType::Match,
            ..any.clone()
        };
        assert!(matching.matches(&b));
        let other = AclFilter {
            principal: Some("User:b".into()),
            ..any
        };
        assert!(!other.matches(&b));
    }

    #[test]
    fn bindings_round_trip_through_rows_and_validate() {
        let b = prefixed(O::Write);
        assert_eq!(AclBinding::from_row(&b.to_row()), Some(b.clone()));
        assert!(b.validate().is_ok());
        let bad = AclBinding {
            pattern_type: PatternType::Match,
            ..b.clone()
        };
        assert!(bad.validate().unwrap_err().contains("LITERAL or PREFIXED"));
        let bad = AclBinding {
            principal: "alice".into(),
            ..b
        };
        assert!(bad.validate().is_err());
    }
}
