//! CreateAcls, DescribeAcls and DeleteAcls: the operator's view of the ACL
//! bindings tenancy evaluates. They need ALTER (create, delete) or DESCRIBE
//! on the cluster, which only superusers hold; an open broker (no
//! `--multi-tenant`) enforces no ACLs and answers SECURITY_DISABLED.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::ErrorCode;
use sluice_tenancy::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType,
};

use super::{count_error, text, RequestMeta};
use crate::authz::authorize_cluster;
use crate::context::BrokerContext;
use crate::session::Session;

/// The refusal every ACL request gets when the session may not manage ACLs.
fn refusal(
    ctx: &BrokerContext,
    session: &Session,
    operation: Operation,
    meta: RequestMeta,
) -> Option<(i16, Option<StrBytes>)> {
    if !ctx.tenancy.enabled() {
        return Some((
            count_error(meta, ErrorCode::SecurityDisabled),
            Some(text(
                "ACLs are not enforced on an open broker; start it with --multi-tenant",
            )),
        ));
    }
    authorize_cluster(ctx, session, operation).err().map(|m| {
        (
            count_error(meta, ErrorCode::ClusterAuthorizationFailed),
            Some(text(m)),
        )
    })
}

pub async fn create(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: CreateAclsRequest,
    meta: RequestMeta,
) -> CreateAclsResponse {
    if let Some((code, message)) = refusal(ctx, session, Operation::Alter, meta) {
        let results = req
            .creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let mut results = Vec::with_capacity(req.creations.len());
    let mut valid = Vec::new();
    for c in &req.creations {
        let binding = (|| {
            let b = AclBinding {
                resource_type: ResourceType::from_code(c.resource_type)
                    .ok_or("unknown resource type")?,
                resource_name: c.resource_name.to_string(),
                pattern_type: PatternType::from_code(c.resource_pattern_type)
                    .ok_or("unknown pattern type")?,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: Operation::from_code(c.operation).ok_or("unknown operation")?,
                permission: Permission::from_code(c.permission_type).ok_or("unknown permission")?,
            };
            Ok::<_, &str>(b)
        })()
        .map_err(str::to_string)
        .and_then(|b| b.validate().map(|()| b));
        results.push(match binding {
            Ok(b) => {
                valid.push(b);
                AclCreationResult::default()
            }
            Err(message) => AclCreationResult::default()
                .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                .with_error_message(Some(text(message))),
        });
    }
    if let Err(e) = ctx.tenancy.create_acls(&valid).await {
        tracing::warn!(error = %e, "creating ACLs failed");
        for r in results.iter_mut().filter(|r| r.error_code == 0) {
            r.error_code = count_error(meta, ErrorCode::KafkaStorageError);
            r.error_message = Some(text(e.client_message()));
        }
    }
    CreateAclsResponse::default().with_results(results)
}

fn filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    Ok(AclFilter {
        resource_type: ResourceType::from_code(resource_type).ok_or("unknown resource type")?,
        resource_name: name.map(|n| n.to_string()),
        pattern_type: PatternType::from_code(pattern_type).ok_or("unknown pattern type")?,
        principal: principal.map(|p| p.to_string()),
        host: host.map(|h| h.to_string()),
        operation: Operation::from_code(operation).ok_or("unknown operation")?,
        permission: Permission::from_code(permission).ok_or("unknown permission")?,
    })
}

pub fn describe(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DescribeAclsRequest,
    meta: RequestMeta,
) -> DescribeAclsResponse {
    if let Some((code, message)) = refusal(ctx, session, Operation::Describe, meta) {
        return DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(message);
    }
    let f = match filter(
        req.resource_type_filter,
        req.resource_name_filter.as_ref(),
        req.pattern_type_filter,
        req.principal_filter.as_ref(),
        req.host_filter.as_ref(),
        req.operation,
        req.permission_type,
    ) {
        Ok(f) => f,
        Err(m) => {
            return DescribeAclsResponse::default()
                .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                .with_error_message(Some(text(m)))
        }
    };
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in ctx.tenancy.describe_acls(&f) {
        by_resource
            .entry((
                b.resource_type.code(),
                b.resource_name.clone(),
                b.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(text(b.principal))
                    .with_host(text(b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(text(name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub async fn delete(
    ctx: &Arc<BrokerContext>,
    session: &Session,
    req: DeleteAclsRequest,
    meta: RequestMeta,
) -> DeleteAclsResponse {
    if let Some((code, message)) = refusal(ctx, session, Operation::Alter, meta) {
        let results = req
            .filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let parsed: Vec<Result<AclFilter, String>> = req
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let valid: Vec<AclFilter> = parsed
        .iter()
        .filter_map(|f| f.as_ref().ok().cloned())
        .collect();
    let deleted = match ctx.tenancy.delete_acls(&valid).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "deleting ACLs failed");
            let message = Some(text(e.client_message()));
            let results = req
                .filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(count_error(meta, ErrorCode::KafkaStorageError))
                        .with_error_message(message.clone())
                })
                .collect();
            return DeleteAclsResponse::default().with_filter_results(results);
        }
    };
    let mut deleted = deleted.into_iter();
    let results = parsed
        .into_iter()
        .map(|f| match f {
            Err(m) => DeleteAclsFilterResult::default()
                .with_error_code(count_error(meta, ErrorCode::InvalidRequest))
                .with_error_message(Some(text(m))),
            Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                deleted
                    .next()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type.code())
                            .with_resource_name(text(b.resource_name))
                            .with_pattern_type(b.pattern_type.code())
                            .with_principal(text(b.principal))
                            .with_host(text(b.host))
                            .with_operation(b.operation.code())
                            .with_permission_type(b.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
