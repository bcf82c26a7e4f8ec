//! Identical concurrent requests share one browser render.
//!
//! Alert storms send the same panel many times at once. Requests with the same picture
//! parameters and the same [`Identity`] get the result of one render: the first starts
//! it (as its own task, so it finishes even if that client goes away), the others wait
//! for it, each within its own deadline.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::identity::Identity;
use crate::error::RenderError;
use crate::output::Output;
use crate::page::Capture;
use crate::request::RenderRequest;

/// The outcome every waiter of one render receives.
pub type SharedOutcome = Result<Arc<Capture>, Arc<RenderError>>;

/// Everything that makes two pictures equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PictureKey {
    url: String,
    width: u32,
    height: Option<u32>,
    initial_height: u32,
    scale_bits: u64,
    landscape: bool,
    timezone: Option<String>,
    accept_language: Option<String>,
    output: Output,
    identity: Identity,
}

impl PictureKey {
    /// The key of `req` as seen by `identity`.
    pub fn of(req: &RenderRequest, identity: Identity) -> Self {
        PictureKey {
            url: req.url.clone(),
            width: req.viewport.width,
            height: req.viewport.height,
            initial_height: req.viewport.initial_height,
            scale_bits: req.viewport.scale.to_bits(),
            landscape: req.viewport.landscape,
            timezone: req.timezone.clone(),
            accept_language: req.accept_language.clone(),
            output: req.output.clone(),
            identity,
        }
    }
}

/// Renders in flight, by picture.
#[derive(Default)]
pub struct Coalescer {
    inflight: Mutex<HashMap<PictureKey, Shared<BoxFuture<'static, SharedOutcome>>>>,
}

impl Coalescer {
    /// Joins the render of `key` if one is in flight, else starts `render` as a task.
    /// Returns the shared outcome and whether this caller started the render.
    pub fn join_or_start<F>(
        self: &Arc<Self>,
        key: PictureKey,
        render: F,
    ) -> (Shared<BoxFuture<'static, SharedOutcome>>, bool)
    where
        F: Future<Output = SharedOutcome> + Send + 'static,
    {
        let Ok(mut inflight) = self.inflight.lock() else {
            // A poisoned map only loses sharing, never a render.
            let task = tokio::spawn(render);
            return (flatten(task).boxed().shared(), true);
        };
        if let Some(existing) = inflight.get(&key) {
            return (existing.clone(), false);
        }
        let this = self.clone();
        let done_key = key.clone();
        let task = tokio::spawn(async move {
            let outcome = render.await;
            if let Ok(mut inflight) = this.inflight.lock() {
                inflight.remove(&done_key);
            }
            outcome
        });
        let shared = flatten(task).boxed().shared();
        inflight.insert(key, shared.clone());
        (shared, true)
    }
}

async fn flatten(task: tokio::task::JoinHandle<SharedOutcome>) -> SharedOutcome {
    task.await.unwrap_or_else(|e| {
        Err(Arc::new(RenderError::local(
            "rendering",
            format!("render task failed: {e}"),
        )))
    })
}
