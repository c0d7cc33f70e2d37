//! Pages that cannot be shown at all (as opposed to a form redisplayed with an error beside a field), and the
//! small response helpers every page uses.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::views::{Chrome, ErrorPage};
use crate::outcome::{ProblemCause, ProblemKind};
use crate::state::AppState;
use crate::store::{StoreError, StoredResponse};

#[derive(Debug)]
pub enum PageError {
    NotFound,
    WalletNotFound,
    BadRequest,
    /// The home page's owner filter breaks the owner rule (a control or invisible character, too long).
    InvalidOwnerFilter,
    /// A form's key came back with other values (the close form: its wallet is usually gone by then, so the
    /// refusal cannot stand beside the field on the wallet page).
    Resubmitted,
    PayloadTooLarge,
    UnsupportedMediaType,
    CrossSite,
    /// A form the signed-in key's role does not allow (read keys move no money; closing needs admin).
    Forbidden,
    /// The database is away; the cause is logged by the middleware.
    Unavailable(String),
    Internal(String),
}

impl PageError {
    /// The row of the error table this page answers with (status, and the operation metric's outcome).
    pub fn kind(&self) -> ProblemKind {
        match self {
            Self::NotFound => ProblemKind::NotFound,
            Self::WalletNotFound => ProblemKind::WalletNotFound,
            Self::BadRequest => ProblemKind::InvalidJson,
            Self::InvalidOwnerFilter => ProblemKind::InvalidRequest,
            Self::Resubmitted => ProblemKind::IdempotencyKeyReused,
            Self::PayloadTooLarge => ProblemKind::PayloadTooLarge,
            Self::UnsupportedMediaType => ProblemKind::UnsupportedMediaType,
            Self::CrossSite | Self::Forbidden => ProblemKind::Forbidden,
            Self::Unavailable(_) => ProblemKind::Unavailable,
            Self::Internal(_) => ProblemKind::Internal,
        }
    }

    /// The page's title and what it tells the person.
    fn words(&self) -> (&'static str, &'static str) {
        match self {
            Self::NotFound => ("Page not found", "There is no page at this address."),
            Self::WalletNotFound => (
                "Wallet not found",
                "There is no open wallet with this number. It may have been closed.",
            ),
            Self::BadRequest => (
                "Bad request",
                "The form could not be read. Please try again.",
            ),
            Self::InvalidOwnerFilter => (
                "Invalid owner filter",
                "An owner’s name has at most 100 characters and no control or invisible characters. Go back to the list and try another name.",
            ),
            Self::Resubmitted => (
                "Form already sent",
                "This form was already sent with other values. Check the result, then fill in the form again.",
            ),
            Self::PayloadTooLarge => ("Form too large", "The form sent was too large."),
            Self::UnsupportedMediaType => (
                "Unsupported form",
                "Forms must be sent as application/x-www-form-urlencoded.",
            ),
            Self::CrossSite => (
                "Form refused",
                "This form was sent from another website, so it was refused. Open revwallet and use its own forms.",
            ),
            Self::Forbidden => (
                "Not allowed",
                "The API key you signed in with may not do this, so nothing was changed. Sign in with a key whose role allows it.",
            ),
            Self::Unavailable(_) => (
                "Service unavailable",
                "The database cannot be reached right now. Nothing was changed; please try again shortly.",
            ),
            Self::Internal(_) => (
                "Something went wrong",
                "An internal error occurred and has been logged. Please try again.",
            ),
        }
    }

    pub fn render(self, app: &AppState) -> Response {
        let (title, message) = self.words();
        let page = ErrorPage {
            chrome: Chrome::new(app),
            title,
            message,
        };
        let mut response = html(self.kind().status(), &page);
        if let Self::Unavailable(cause) | Self::Internal(cause) = self {
            // The logging middleware logs the cause once, with the request id; the page never shows it.
            response.extensions_mut().insert(ProblemCause(cause));
        }
        response
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.words().0)
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        let cause = match &error {
            StoreError::Unavailable(source) | StoreError::Database(source) => {
                format!("{error}: {source}")
            }
            other => other.to_string(),
        };
        match ProblemKind::from(&error) {
            ProblemKind::WalletNotFound => Self::WalletNotFound,
            ProblemKind::Unavailable => Self::Unavailable(cause),
            ProblemKind::Internal => Self::Internal(cause),
            _ => Self::Internal(format!("unexpected store outcome: {cause}")),
        }
    }
}

pub fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => {
            let mut response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "internal error\n",
            )
                .into_response();
            response
                .extensions_mut()
                .insert(ProblemCause(format!("template: {error}")));
            response
        }
    }
}

pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A repeated form post goes where its first post went.
pub fn replayed(stored: StoredResponse, fallback: &str) -> Response {
    see_other(stored.location.as_deref().unwrap_or(fallback))
}
