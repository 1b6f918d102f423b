//! `INSERT INTO` a coordinated table: messages go to the platform the router picks, in windows;
//! a window is kept until that platform has acknowledged all of it ([`TopicWriter::checkpoint`],
//! which runs while the next window is sent), and everything unacknowledged (at most two
//! windows) is re-sent to the other platform when it fails. So a row is acknowledged by at
//! least one platform before the statement succeeds, and a row sent twice has one id (readers
//! drop the copy).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::health::{PlatformHealth, now};
use super::router::{Lane, Routing, after_failure, choose};
use crate::stream::StreamError;
use crate::stream::sink::{Checkpoint, Messages, TopicSink, TopicWriter};

/// How a coordinated write behaves.
#[derive(Debug, Clone, Copy)]
pub struct WriteSettings {
    /// How the platform is picked.
    pub routing: Routing,
    /// Retries on one platform after a retryable failure, before moving on.
    pub retry_max: u32,
    /// Wait before each retry.
    pub retry_backoff: Duration,
    /// Bound of each send, settle and connect: past it, the platform has failed.
    pub ack_timeout: Duration,
    /// Messages kept until acknowledged, at most (the replay bound): two windows of half
    /// that, one being acknowledged while the other is sent; sending waits once both are full.
    pub window: usize,
}

/// Both platforms of a coordinated table.
#[derive(Debug)]
pub struct Lanes {
    /// Writers of the primary and the fallback.
    pub sinks: [Arc<dyn TopicSink>; 2],
    /// Their breakers and counters.
    pub health: [Arc<PlatformHealth>; 2],
}

/// The [`TopicSink`] of a coordinated table.
#[derive(Debug)]
pub struct CoordinatedSink {
    /// `coordinated table calls`.
    pub name: String,
    /// The platforms.
    pub lanes: Arc<Lanes>,
    /// Routing, retries, window.
    pub settings: WriteSettings,
}

#[async_trait]
impl TopicSink for CoordinatedSink {
    fn target(&self) -> String {
        self.name.clone()
    }

    async fn open(&self) -> Result<Box<dyn TopicWriter>, StreamError> {
        Ok(Box::new(CoordinatedWriter {
            name: self.name.clone(),
            lanes: Arc::clone(&self.lanes),
            settings: self.settings,
            writers: [None, None],
            current: None,
            settling: None,
            window: Window::default(),
            window_started: None,
            acknowledged: 0,
            last_error: [None, None],
        }))
    }
}

/// `call`, or a retryable "`what` within N ms" error on `target` once `timeout` has passed.
async fn within<T>(
    timeout: Duration,
    target: String,
    what: &str,
    call: impl Future<Output = Result<T, StreamError>>,
) -> Result<T, StreamError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => result,
        Err(_) => Err(StreamError::transient(
            target,
            format!("{what} within {} ms", timeout.as_millis()),
        )),
    }
}

/// Messages sent to one platform and not yet acknowledged by it, as the batches they came in.
#[derive(Default)]
struct Window {
    batches: Vec<Messages>,
    len: usize,
}

impl Window {
    fn push(&mut self, batch: Messages) {
        self.len += batch.len();
        self.batches.push(batch);
    }

    /// `later` after these, in the order sent.
    fn append(&mut self, later: Window) {
        self.len += later.len;
        self.batches.extend(later.batches);
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A window whose checkpoint is in progress on the current platform.
struct Settling {
    messages: Window,
    checkpoint: Checkpoint,
    started: Instant,
}

struct CoordinatedWriter {
    name: String,
    lanes: Arc<Lanes>,
    settings: WriteSettings,
    /// Each platform's writer, once opened (kept until the statement ends).
    writers: [Option<Box<dyn TopicWriter>>; 2],
    /// The platform the unacknowledged messages went to (both windows are on it).
    current: Option<Lane>,
    /// The window sent before `window`, being acknowledged while `window` is sent.
    settling: Option<Settling>,
    /// Messages sent to `current` since `settling` started (the window being filled).
    window: Window,
    window_started: Option<Instant>,
    /// Messages acknowledged (each row once, wherever it went).
    acknowledged: u64,
    last_error: [Option<StreamError>; 2],
}

impl CoordinatedWriter {
    fn health(&self, lane: Lane) -> &Arc<PlatformHealth> {
        &self.lanes.health[lane.index()]
    }

    /// Messages per window: two windows (one settling, one being sent) make the bound.
    fn window_size(&self) -> usize {
        (self.settings.window / 2).max(1)
    }

    /// The platform the router picks now (`None`: no breaker lets writes through).
    fn preferred(&self) -> Option<Lane> {
        let at = now();
        let primary = self.health(Lane::Primary).view(at);
        let fallback = self.health(Lane::Fallback).view(at);
        choose(self.settings.routing, primary, fallback)
    }

    /// Picks the platform for the next window (the breakers and measured health decide).
    fn route(&mut self) -> Result<Lane, StreamError> {
        let Some(lane) = self.preferred() else {
            return Err(self.both_down());
        };
        self.health(lane).breaker(|b| b.allows(now()));
        self.current = Some(lane);
        Ok(lane)
    }

    fn both_down(&self) -> StreamError {
        let describe = |lane: Lane| {
            let h = self.health(lane);
            match &self.last_error[lane.index()] {
                Some(e) => format!("{} {e}", lane.name()),
                None => format!("{} {}: breaker open", lane.name(), h.target),
            }
        };
        StreamError::transient(
            &self.name,
            format!(
                "no platform takes writes: {}; {}",
                describe(Lane::Primary),
                describe(Lane::Fallback)
            ),
        )
    }

    /// Sends `messages` to `lane`, opening its writer first when needed.
    async fn deliver(&mut self, lane: Lane, messages: Messages) -> Result<(), StreamError> {
        if self.writers[lane.index()].is_none() {
            let sink = Arc::clone(&self.lanes.sinks[lane.index()]);
            let writer = within(
                self.settings.ack_timeout,
                sink.target(),
                "cannot start writing",
                sink.open(),
            )
            .await?;
            self.writers[lane.index()] = Some(writer);
        }
        self.health(lane).sent(messages.len());
        let timeout = self.settings.ack_timeout;
        let target = self.health(lane).target.clone();
        let writer = self.writers[lane.index()].as_mut().expect("opened above");
        within(timeout, target, "messages not taken", writer.send(messages)).await
    }

    /// After `error` on the current platform: every message it has not acknowledged (both
    /// windows, in the order sent) goes again to the platform the breakers and the retry
    /// budget allow, until one takes it; fails when none does.
    async fn recover(&mut self, mut error: StreamError) -> Result<(), StreamError> {
        if let Some(settling) = self.settling.take() {
            let mut unacknowledged = settling.messages;
            unacknowledged.append(std::mem::take(&mut self.window));
            self.window = unacknowledged;
        }
        let mut retries = 0u32;
        loop {
            let Some(lane) = self.current else {
                return Err(error);
            };
            if !error.retryable {
                return Err(error);
            }
            let at = now();
            self.health(lane)
                .failed(self.window.len, &error.to_string(), at);
            log::warn!("{}: {} failed: {error}", self.name, lane.name());
            self.last_error[lane.index()] = Some(error);
            if let Some(writer) = self.writers[lane.index()].take() {
                // what it acknowledged before these windows is settled; they are re-sent
                writer.abort().await;
            }
            let failed_allowed = self.health(lane).breaker(|b| b.would_allow(at));
            let other_allowed = self.health(lane.other()).breaker(|b| b.would_allow(at));
            let Some(next) = after_failure(
                lane,
                failed_allowed,
                retries < self.settings.retry_max,
                other_allowed,
            ) else {
                return Err(self.both_down());
            };
            if next == lane {
                retries += 1;
                tokio::time::sleep(self.settings.retry_backoff).await;
            } else {
                retries = 0;
            }
            self.health(next).breaker(|b| b.allows(now()));
            self.current = Some(next);
            self.window_started = Some(Instant::now());
            match self.replay(next).await {
                Ok(()) => return Ok(()),
                Err(e) => error = e,
            }
        }
    }

    /// Sends the whole window (again) to `lane`, batch by batch.
    async fn replay(&mut self, lane: Lane) -> Result<(), StreamError> {
        let batches = self.window.batches.clone();
        for batch in batches {
            self.deliver(lane, batch).await?;
        }
        Ok(())
    }

    /// Waits for the settling window's checkpoint (moving every unacknowledged message to the
    /// other platform when it fails) and counts it as acknowledged.
    async fn await_settling(&mut self) -> Result<(), StreamError> {
        while let Some(settling) = self.settling.take() {
            let Some(lane) = self.current else {
                // a window without a platform: a bug, never a silent loss
                return Err(StreamError::permanent(
                    &self.name,
                    "unacknowledged messages without a platform",
                ));
            };
            let target = self.health(lane).target.clone();
            let timeout = self.settings.ack_timeout;
            let checked = within(
                timeout,
                target,
                "messages not acknowledged",
                settling.checkpoint,
            )
            .await;
            match checked {
                Ok(()) => {
                    let n = settling.messages.len;
                    self.health(lane)
                        .acknowledged(n, settling.started.elapsed(), now());
                    self.acknowledged += n as u64;
                }
                Err(e) => {
                    let mut unacknowledged = settling.messages;
                    unacknowledged.append(std::mem::take(&mut self.window));
                    self.window = unacknowledged;
                    self.recover(e).await?;
                }
            }
        }
        Ok(())
    }

    /// Starts the checkpoint of the window being filled (the one before it is acknowledged);
    /// a writer that cannot settle while sending settles it here.
    async fn start_checkpoint(&mut self) -> Result<(), StreamError> {
        if self.window.is_empty() {
            return Ok(());
        }
        let writer = self
            .current
            .and_then(|lane| self.writers[lane.index()].as_mut());
        let Some(writer) = writer else {
            // messages sent without a writer: a bug, never a silent loss
            return Err(StreamError::permanent(
                &self.name,
                "unacknowledged messages without a platform writer",
            ));
        };
        let checkpoint = match writer.checkpoint() {
            Some(checkpoint) => checkpoint,
            None => {
                let settled = writer.settle().await;
                Box::pin(std::future::ready(settled))
            }
        };
        self.settling = Some(Settling {
            messages: std::mem::take(&mut self.window),
            checkpoint,
            started: self.window_started.take().unwrap_or_else(Instant::now),
        });
        Ok(())
    }

    /// The window is full: once the window before it is acknowledged, its checkpoint starts
    /// and sending goes on into a new window; when the router now prefers the other platform,
    /// this window is acknowledged first and the next one goes there.
    async fn next_window(&mut self) -> Result<(), StreamError> {
        self.await_settling().await?;
        self.start_checkpoint().await?;
        if self.preferred() != self.current {
            self.await_settling().await?;
            if self.window.is_empty() {
                // nothing unacknowledged anywhere: the next send routes afresh
                self.current = None;
            }
        }
        Ok(())
    }

    /// Waits until every message sent is acknowledged by some platform.
    async fn settle_all(&mut self) -> Result<(), StreamError> {
        loop {
            self.await_settling().await?;
            if self.window.is_empty() {
                return Ok(());
            }
            self.start_checkpoint().await?;
        }
    }

    async fn send_inner(&mut self, messages: Messages) -> Result<(), StreamError> {
        if messages.is_empty() {
            return Ok(());
        }
        let lane = match self.current {
            Some(lane) if !self.window.is_empty() || self.settling.is_some() => lane,
            _ => self.route()?,
        };
        if self.window_started.is_none() {
            self.window_started = Some(Instant::now());
        }
        self.window.push(Arc::clone(&messages));
        if let Err(e) = self.deliver(lane, messages).await {
            self.recover(e).await?;
        }
        if self.window.len >= self.window_size() {
            self.next_window().await?;
        }
        Ok(())
    }

    async fn abort_all(&mut self) {
        self.settling = None;
        for writer in self.writers.iter_mut() {
            if let Some(writer) = writer.take() {
                writer.abort().await;
            }
        }
    }
}

#[async_trait]
impl TopicWriter for CoordinatedWriter {
    async fn send(&mut self, messages: Messages) -> Result<(), StreamError> {
        let sent = self.send_inner(messages).await;
        if sent.is_err() {
            self.abort_all().await;
        }
        sent
    }

    async fn settle(&mut self) -> Result<(), StreamError> {
        let settled = self.settle_all().await;
        if settled.is_err() {
            self.abort_all().await;
        }
        settled
    }

    async fn finish(mut self: Box<Self>) -> Result<u64, StreamError> {
        self.settle().await?;
        // every window is acknowledged; each writer used finishes (Iggy: fsync, Kafka: commit)
        for lane in [Lane::Primary, Lane::Fallback] {
            if let Some(writer) = self.writers[lane.index()].take() {
                let finished =
                    tokio::time::timeout(self.settings.ack_timeout, writer.finish()).await;
                let error = match finished {
                    Ok(Ok(_)) => continue,
                    Ok(Err(e)) => e,
                    Err(_) => StreamError::transient(
                        &self.health(lane).target,
                        "write not finished in time",
                    ),
                };
                self.abort_all().await;
                return Err(error);
            }
        }
        Ok(self.acknowledged)
    }

    async fn abort(mut self: Box<Self>) {
        self.abort_all().await;
    }
}
