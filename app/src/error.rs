//! The error every server function returns: a stable machine code plus a human message, serializable to the
//! browser. The service's `ServiceError` converts into it; framework failures arrive as `ServerFnErrorErr`.
use serde::{Deserialize, Serialize};
use server_fn_compat::*;

mod server_fn_compat {
    pub use leptos::server_fn::codec::JsonEncoding;
    pub use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// Stable code, the same as the REST envelope's `code` (e.g. `VALIDATION_ERROR`).
    pub code: String,
    /// One sentence that tells the person what to do.
    pub message: String,
}

impl AppError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
    pub fn is_unauthenticated(&self) -> bool {
        self.code == "UNAUTHORIZED"
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = match value {
            ServerFnErrorErr::Request(_) => "Could not reach the server. Check your connection and try again.",
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                "The form was incomplete. Fill in every field and try again."
            }
            _ => "Something went wrong. Try again in a moment.",
        };
        Self::new("REQUEST_FAILED", message)
    }
}
