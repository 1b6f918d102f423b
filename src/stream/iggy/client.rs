//! Connections to an Iggy server with bounds on everything the SDK leaves unbounded: the SDK's
//! own reconnecting is off (a connection that drops fails the call, and the reader, writer or
//! coordinator decides what next), and every call runs under the table's `timeout.ms`. A
//! low-level `TcpClient` is used (no heartbeat task); it logs in when it connects.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iggy::prelude::{
    AutoLogin, Client, IggyDuration, IggyError, TcpClient, TcpClientConfig,
    TcpClientReconnectionConfig,
};
use iggy_common::Credentials;
use secrecy::SecretString;

use crate::stream::StreamError;

/// Where a server is and who logs in.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub address: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Bound of each call (and of connecting).
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("password", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Whether retrying can help after this error (the connection, not the request, failed).
pub fn is_retryable(e: &IggyError) -> bool {
    matches!(
        e,
        IggyError::Disconnected
            | IggyError::CannotEstablishConnection
            | IggyError::NotConnected
            | IggyError::StaleClient
            | IggyError::TcpError
            | IggyError::EmptyResponse
            | IggyError::ConnectionClosed
    )
}

/// `what: <the SDK's message>`, naming `target`.
pub fn error(target: &str, what: &str, e: &IggyError) -> StreamError {
    let message = match e {
        IggyError::CannotEstablishConnection => {
            format!("{what}: server not reachable")
        }
        IggyError::InvalidCredentials => format!("{what}: wrong user name or password"),
        _ => format!("{what}: {e}"),
    };
    StreamError {
        target: target.to_string(),
        message: message.replace(['\n', '\r'], " "),
        retryable: is_retryable(e),
    }
}

/// Runs one SDK call under `timeout`; a call that does not answer in time is a (retryable)
/// error. The client of a call that timed out must not be used again (the SDK may still hold
/// its connection's lock).
pub async fn bounded<T>(
    target: &str,
    what: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, IggyError>>,
) -> Result<T, StreamError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error(target, what, &e)),
        Err(_) => Err(StreamError::transient(
            target,
            format!("{what}: no answer within {} ms", timeout.as_millis()),
        )),
    }
}

/// A connected, logged-in client.
pub async fn connect(endpoint: &Endpoint, target: &str) -> Result<TcpClient, StreamError> {
    let config = TcpClientConfig {
        server_address: endpoint.address.clone(),
        auto_login: AutoLogin::Enabled(Credentials::UsernamePassword(
            endpoint.user.clone(),
            SecretString::from(endpoint.password.clone()),
        )),
        // no reconnects inside the SDK: a failed client is dropped and the caller decides
        // (its reconnect re-sends the last request, and behind a proxy that accepts and then
        // closes, connect → login → reconnect recursed until the stack overflowed)
        reconnection: TcpClientReconnectionConfig {
            enabled: false,
            max_retries: Some(0),
            interval: IggyDuration::from(Duration::from_millis(200)),
            reestablish_after: IggyDuration::from(Duration::from_millis(0)),
        },
        nodelay: true,
        ..TcpClientConfig::default()
    };
    let client = TcpClient::create(Arc::new(config))
        .map_err(|e| error(target, "cannot make a client", &e))?;
    // connecting logs in (a login that fails is this call's error)
    bounded(
        target,
        "cannot connect",
        endpoint.timeout,
        Client::connect(&client),
    )
    .await?;
    Ok(client)
}

/// Closes a client (bounded; errors do not matter any more).
pub async fn close(client: TcpClient, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, Client::disconnect(&client)).await;
}

/// How long a [`Spare`] client may sit unused and still be taken.
const SPARE_IDLE: Duration = Duration::from_secs(10);

/// One logged-in client kept between a table's metadata calls (the check of `CREATE`, each
/// query's planning, an `INSERT`'s first look), so that they do not each log in again: a login
/// costs the server an Argon2 hash (about 15 ms of a core) and the caller a round trip. A
/// client is kept only after a call on it succeeded and is taken only while it has been idle
/// less than [`SPARE_IDLE`]; a call that fails on a kept client is made once more on a new one
/// ([`with_client`]). Clones share the one client.
#[derive(Clone, Default)]
pub struct Spare(Arc<Mutex<Option<(TcpClient, Instant)>>>);

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spare")
    }
}

impl Spare {
    /// The kept client, when there is one idle for less than [`SPARE_IDLE`] (an older one is
    /// closed).
    async fn take(&self, timeout: Duration) -> Option<TcpClient> {
        let kept = self.0.lock().ok().and_then(|mut slot| slot.take());
        match kept {
            Some((client, since)) if since.elapsed() < SPARE_IDLE => Some(client),
            Some((client, _)) => {
                close(client, timeout).await;
                None
            }
            None => None,
        }
    }

    /// After a call on `client`: kept when the call succeeded (`ok`), closed otherwise.
    async fn settle(&self, client: Arc<TcpClient>, ok: bool, timeout: Duration) {
        // the call is over: nothing else holds the client
        if let Ok(client) = Arc::try_unwrap(client) {
            if ok {
                self.keep(client, timeout).await;
            } else {
                close(client, timeout).await;
            }
        }
    }

    /// Keeps `client` for the next call (closes it when another one is kept already).
    pub async fn keep(&self, client: TcpClient, timeout: Duration) {
        let rest = match self.0.lock() {
            Ok(mut slot) if slot.is_none() => {
                *slot = Some((client, Instant::now()));
                None
            }
            _ => Some(client),
        };
        if let Some(client) = rest {
            close(client, timeout).await;
        }
    }
}

/// Runs `call` on the spare client, or on a new one when none is kept or the call failed on
/// the kept one (it may have been closed by the server meanwhile); the client is kept again
/// when the call succeeded, and closed otherwise. `call` must be safe to make twice.
pub async fn with_client<T, F, Fut>(
    spare: &Spare,
    endpoint: &Endpoint,
    target: &str,
    call: F,
) -> Result<T, StreamError>
where
    F: Fn(Arc<TcpClient>) -> Fut,
    Fut: Future<Output = Result<T, StreamError>>,
{
    let timeout = endpoint.timeout.min(Duration::from_secs(1));
    if let Some(client) = spare.take(timeout).await {
        let client = Arc::new(client);
        let result = call(Arc::clone(&client)).await;
        let ok = result.is_ok();
        spare.settle(client, ok, timeout).await;
        if ok {
            return result;
        }
    }
    let client = Arc::new(connect(endpoint, target).await?);
    let result = call(Arc::clone(&client)).await;
    spare.settle(client, result.is_ok(), timeout).await;
    result
}
