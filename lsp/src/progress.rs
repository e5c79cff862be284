//! Work-done progress (`$/progress`): under the token a request gave, or one the server creates
//! with `window/workDoneProgress/create` when the client supports it; nothing otherwise.
//! A progress that is dropped without [`WorkProgress::end`] ends itself, so a cancelled request
//! never leaves a progress open in the editor.
//!
//! It does not decide what to report.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tower_lsp_server::ls_types::notification::Progress;
use tower_lsp_server::ls_types::request::WorkDoneProgressCreate;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

/// How long the server waits for the client to answer one of its requests.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Work-done progress (`$/progress`) under a token the client gave or one the server created;
/// does nothing when there is neither.
pub struct WorkProgress {
    client: Client,
    token: Option<ProgressToken>,
    ended: std::sync::atomic::AtomicBool,
}

impl WorkProgress {
    /// Begins progress. `given` is the request's `workDoneToken`; without one, a token is
    /// created through `window/workDoneProgress/create` when `can_create` (the client supports
    /// it).
    pub async fn begin(
        client: &Client,
        can_create: bool,
        given: Option<ProgressToken>,
        title: &str,
        message: Option<String>,
    ) -> Self {
        static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);
        let token = match given {
            Some(t) => Some(t),
            None if can_create => {
                let n = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
                let token = ProgressToken::String(format!("ghostline/progress-{n}"));
                let create =
                    client.send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                        token: token.clone(),
                    });
                match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, create).await {
                    Ok(Ok(())) => Some(token),
                    _ => None,
                }
            }
            None => None,
        };
        let p = WorkProgress {
            client: client.clone(),
            token,
            ended: std::sync::atomic::AtomicBool::new(false),
        };
        p.send(WorkDoneProgress::Begin(WorkDoneProgressBegin {
            title: title.into(),
            cancellable: Some(false),
            message,
            percentage: Some(0),
        }))
        .await;
        p
    }

    async fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.client
                .send_notification::<Progress>(ProgressParams {
                    token: token.clone(),
                    value: ProgressParamsValue::WorkDone(value),
                })
                .await;
        }
    }

    /// Reports progress.
    pub async fn report(&self, message: Option<String>, percentage: Option<u32>) {
        self.send(WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: Some(false),
            message,
            percentage,
        }))
        .await;
    }

    /// Ends progress.
    pub async fn end(&self, message: Option<String>) {
        self.ended.store(true, std::sync::atomic::Ordering::SeqCst);
        self.send(WorkDoneProgress::End(WorkDoneProgressEnd { message }))
            .await;
    }
}

impl Drop for WorkProgress {
    fn drop(&mut self) {
        if self.ended.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let (Some(token), Ok(rt)) = (self.token.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let client = self.client.clone();
        rt.spawn(async move {
            client
                .send_notification::<Progress>(ProgressParams {
                    token,
                    value: ProgressParamsValue::WorkDone(WorkDoneProgress::End(
                        WorkDoneProgressEnd {
                            message: Some("cancelled".into()),
                        },
                    )),
                })
                .await;
        });
    }
}
