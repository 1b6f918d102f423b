//! One layer around the Flight service for what every call shares: its method, gRPC code and
//! time for the metrics, and, when traces are on, its span (the caller's `traceparent` as its
//! parent), kept entered while the response streams, so that the query's operator spans hang
//! under it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use tracing::Instrument;

use super::metrics::ServerMetrics;
use super::status::code_name;

/// The Flight service's methods (anything else is counted as `other`, so that labels stay
/// few whatever paths clients send).
const METHODS: [&str; 10] = [
    "Handshake",
    "ListFlights",
    "GetFlightInfo",
    "PollFlightInfo",
    "GetSchema",
    "DoGet",
    "DoPut",
    "DoExchange",
    "DoAction",
    "ListActions",
];

/// The method of a gRPC path (`/arrow.flight.protocol.FlightService/DoGet` → `DoGet`).
fn method_of(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or("");
    METHODS
        .iter()
        .find(|m| **m == name)
        .copied()
        .unwrap_or("other")
}

/// The gRPC code a `grpc-status` header or trailer names.
fn code_of(headers: &http::HeaderMap) -> Option<String> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    let code = tonic::Code::from_i32(value.trim().parse().ok()?);
    Some(code_name(code))
}

/// The layer: metrics when the server has them, spans when traces are on.
#[derive(Debug, Clone, Default)]
pub struct RpcLayer {
    metrics: Option<Arc<ServerMetrics>>,
    traced: bool,
}

impl RpcLayer {
    /// Counts calls into `metrics` (when given) and makes a span per call when `traced`.
    pub fn new(metrics: Option<Arc<ServerMetrics>>, traced: bool) -> Self {
        RpcLayer { metrics, traced }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = Rpc<S>;

    fn layer(&self, inner: S) -> Rpc<S> {
        Rpc {
            inner,
            layer: self.clone(),
        }
    }
}

/// The Flight service inside an [`RpcLayer`].
#[derive(Debug, Clone)]
pub struct Rpc<S> {
    inner: S,
    layer: RpcLayer,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Rpc<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<RpcBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let method = method_of(request.uri().path());
        let span = if self.layer.traced {
            let span = tracing::info_span!(
                target: "vcfq::flight",
                "flight",
                otel.name = method,
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                rpc.system = "grpc",
                rpc.service = "arrow.flight.protocol.FlightService",
                rpc.method = method,
                rpc.grpc.status_code = tracing::field::Empty,
                db.query.text = tracing::field::Empty,
            );
            crate::telemetry::continue_trace(&span, request.headers());
            span
        } else {
            tracing::Span::none()
        };
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let metrics = self.layer.metrics.clone();
        Box::pin(async move {
            let response = future.instrument(span.clone()).await?;
            // a trailers-only response (an error before any data) has its code in the headers
            let code = code_of(response.headers());
            let end = End {
                method,
                started,
                metrics,
                span: span.clone(),
                code,
            };
            Ok(response.map(|inner| RpcBody {
                inner,
                span,
                end: Some(end),
            }))
        })
    }
}

/// A call's end: recorded when its response body ends or is dropped.
struct End {
    method: &'static str,
    started: Instant,
    metrics: Option<Arc<ServerMetrics>>,
    span: tracing::Span,
    /// The gRPC code seen; none when the body is dropped before its trailers (the client went
    /// away): `CANCELLED`.
    code: Option<String>,
}

impl Drop for End {
    fn drop(&mut self) {
        let code = self.code.take().unwrap_or_else(|| "CANCELLED".to_string());
        if let Some(m) = &self.metrics {
            m.rpc(self.method, &code);
            m.rpc_timer(self.method)
                .observe(self.started.elapsed().as_secs_f64());
        }
        self.span.record("rpc.grpc.status_code", code.as_str());
        if code != "OK" {
            self.span.record("otel.status_code", "ERROR");
        }
    }
}

/// A response body that keeps its call's span entered while it is polled and records the
/// call's end.
pub struct RpcBody<B> {
    inner: B,
    span: tracing::Span,
    end: Option<End>,
}

impl<B: Body + Unpin> Body for RpcBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = {
            let _entered = this.span.enter();
            Pin::new(&mut this.inner).poll_frame(cx)
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(end)) = (frame.trailers_ref(), this.end.as_mut())
                    && let Some(code) = code_of(trailers)
                {
                    end.code = Some(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut end) = this.end.take() {
                    end.code.get_or_insert_with(|| "UNKNOWN".to_string());
                }
            }
            Poll::Ready(None) => {
                if let Some(mut end) = this.end.take() {
                    end.code.get_or_insert_with(|| "OK".to_string());
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_codes_of_calls() {
        assert_eq!(
            method_of("/arrow.flight.protocol.FlightService/DoGet"),
            "DoGet"
        );
        assert_eq!(method_of("/x.Y/Evil{label}"), "other");
        let mut h = http::HeaderMap::new();
        assert_eq!(code_of(&h), None);
        h.insert("grpc-status", "7".parse().unwrap());
        assert_eq!(code_of(&h).as_deref(), Some("PERMISSION_DENIED"));
        h.insert("grpc-status", "0".parse().unwrap());
        assert_eq!(code_of(&h).as_deref(), Some("OK"));
    }
}
