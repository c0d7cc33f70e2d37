//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use super::error::Problem;
use super::{holds, schema, wallets};

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
        wallets::close_wallet,
        holds::place_hold,
        holds::get_hold,
        holds::list_holds,
        holds::capture_hold,
        holds::void_hold,
    ),
    components(schemas(
        Problem,
        schema::WalletResponse,
        schema::TransactionResponse,
        schema::TransferResponse,
        schema::CreateWalletRequest,
        schema::MoveMoneyRequest,
        schema::TransferRequest,
        holds::HoldResponse,
        holds::CaptureResponse,
        holds::PlaceHoldRequest,
        holds::CaptureHoldRequest,
        holds::VoidHoldRequest
    ))
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
