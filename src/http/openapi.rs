//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use super::error::Problem;
use super::{events, holds, keys, schema, statement, wallets, webhooks};

/// Every `/wallet` route needs `Authorization: Bearer <key>` (unless the server runs with `--auth off`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("rw_… API key")
                    .description(Some(
                        "An API key with the role the route needs: read (GET), write (POST), admin \
                         (DELETE, /wallet/keys, /wallet/webhooks)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "revwallet",
        description = "Exact-money wallets: amounts are decimal strings in the \
        currency's minor-unit precision; errors are RFC 9457 problem JSON with a stable `code`."
    ),
    paths(
        wallets::create_wallet,
        wallets::list_wallets,
        wallets::get_wallet,
        wallets::get_balance,
        wallets::deposit,
        wallets::withdraw,
        wallets::transfer,
        wallets::list_transactions,
        statement::get_statement,
        wallets::close_wallet,
        keys::create_key,
        keys::list_keys,
        keys::revoke_key,
        holds::place_hold,
        holds::get_hold,
        holds::list_holds,
        holds::capture_hold,
        holds::void_hold,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::delete_webhook,
        webhooks::list_deliveries,
        events::list_events,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(
        Problem,
        schema::WalletResponse,
        schema::TransactionResponse,
        schema::TransferResponse,
        schema::WalletAsOfResponse,
        schema::CreateWalletRequest,
        schema::MoveMoneyRequest,
        schema::TransferRequest,
        keys::CreateKeyRequest,
        keys::KeyResponse,
        holds::HoldResponse,
        holds::CaptureResponse,
        holds::PlaceHoldRequest,
        holds::CaptureHoldRequest,
        holds::VoidHoldRequest,
        webhooks::CreateWebhookRequest,
        webhooks::WebhookResponse,
        webhooks::DeliveryResponse,
        webhooks::AttemptResponse,
        events::EventResponse,
        events::EventData
    ))
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
