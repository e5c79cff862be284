//! A tower layer around the language service: one `tracing` span per request (method, id,
//! latency and, recorded by the handlers, prompt/reused/evaluated tokens), and a panic in a
//! handler becomes an internal-error response instead of taking the server down.
//!
//! It does not change what a handler answers in any other way.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::FutureExt as _;
use tower_lsp_server::jsonrpc::{Request, Response};
use tower_service::Service;
use tracing::field::Empty;
use tracing::Instrument as _;

/// Wraps the `LspService`.
pub struct Traced<S> {
    inner: S,
}

impl<S> Traced<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Traced { inner }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> Service<Request> for Traced<S>
where
    S: Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Option<Response>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Option<Response>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let method = req.method().to_owned();
        let id = req.id().cloned();
        let span = match &id {
            Some(id) => tracing::info_span!(
                "request",
                method = %method,
                id = %id,
                prompt_tokens = Empty,
                reused_tokens = Empty,
                shifted_tokens = Empty,
                evaluated_tokens = Empty,
                generated_tokens = Empty,
                outcome = Empty,
            ),
            None => tracing::debug_span!("notification", method = %method),
        };
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(
            async move {
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(result) => {
                        let ms = start.elapsed().as_secs_f64() * 1000.0;
                        if id.is_some() {
                            tracing::info!(latency_ms = format_args!("{ms:.1}"), "done");
                        } else {
                            tracing::debug!(latency_ms = format_args!("{ms:.1}"), "done");
                        }
                        result
                    }
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        tracing::error!("handler panicked: {what}");
                        Ok(id.map(|id| {
                            let mut err = tower_lsp_server::jsonrpc::Error::internal_error();
                            err.message = format!("internal error in {method}: {what}").into();
                            Response::from_error(id, err)
                        }))
                    }
                }
            }
            .instrument(span),
        )
    }
}
