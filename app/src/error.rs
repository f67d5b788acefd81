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

    // A refused form without JavaScript comes back as `?__path=…&__err=<this>` on the page it was posted from, and
    // the page shows the message. Sealed with the instance's secret box and dated, so a crafted link cannot make
    // a Latchkey page show words of an attacker's choosing (content spoofing).
    #[cfg(feature = "ssr")]
    fn ser(&self) -> bytes::Bytes {
        url_seal::seal(self)
    }

    #[cfg(feature = "ssr")]
    fn de(data: bytes::Bytes) -> Self {
        url_seal::open(&data).unwrap_or_else(|| Self::new("REQUEST_FAILED", "Something went wrong. Try again in a moment."))
    }
}

#[cfg(feature = "ssr")]
pub mod url_seal {
    use super::AppError;
    use crate::service::crypto::SecretBox;
    use std::sync::{Arc, OnceLock};

    const AAD: &str = "server-fn-error";
    /// How long a refused form's message can be shown from its link.
    const TTL_SECS: i64 = 600;
    static SEAL: OnceLock<Arc<SecretBox>> = OnceLock::new();

    /// Called once at start-up with the instance's secret box (every node shares the key file).
    pub fn install(secrets: Arc<SecretBox>) {
        let _ = SEAL.set(secrets);
    }

    pub(super) fn seal(err: &AppError) -> bytes::Bytes {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let sealed = serde_json::to_vec(&(now, err))
            .ok()
            .zip(SEAL.get())
            .and_then(|(plain, seal)| seal.seal(&plain, AAD).ok());
        sealed.map(bytes::Bytes::from).unwrap_or_default()
    }

    pub(super) fn open(data: &[u8]) -> Option<AppError> {
        let plain = SEAL.get()?.open(data, AAD).ok()?;
        let (at, err): (i64, AppError) = serde_json::from_slice(&plain).ok()?;
        let age = time::OffsetDateTime::now_utc().unix_timestamp() - at;
        (0..=TTL_SECS).contains(&age).then_some(err)
    }
}
