//! The OpenAPI document's frame: title, bearer security and tags. Each
//! endpoint documents itself with `#[utoipa::path]` next to its handler and
//! is collected by its module's `OpenApiRouter`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::ControlPlane;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice REST API",
        description = "Tenants, credentials, topics and consumer groups of a Sluice broker. \
Send `Authorization: Bearer <token>`: the operator token (in <data-dir>/operator.token) \
or a tenant API token (`sluice tokens create --tenant NAME`), which sees only its tenant. \
Every refusal is a 4xx with `{\"error\": code, \"message\": what and how to fix}`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "tenants", description = "Tenants, plans and connection config (multi-tenant brokers)"),
        (name = "credentials", description = "A tenant's SASL credentials and client certificates"),
        (name = "tokens", description = "A tenant's REST API tokens"),
        (name = "topics", description = "Topics, within a tenant's plan, and their records"),
        (name = "groups", description = "Consumer groups"),
        (name = "cluster", description = "Brokers and usage by tenant (operator)"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// An empty router carrying the document's frame.
pub fn router() -> OpenApiRouter<ControlPlane> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
}
