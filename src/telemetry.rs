//! Traces: OpenTelemetry over OTLP, for `vcfq serve` (one trace per Flight SQL call) and the
//! CLI (`--trace`: one trace per statement). Spans come from `tracing`: vcfq's own (a call, a
//! statement) and one per DataFusion operator (datafusion-tracing), carrying the operator's
//! metrics. Off unless asked for; when off nothing is installed, so nothing is paid.
//!
//! Configured by the standard variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL` = `grpc` (the default, http://localhost:4317) |
//! `http/protobuf`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, …) or
//! by [`TraceSettings`] (the server config's `[tracing]`), which win over the variables.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::physical_optimizer::PhysicalOptimizerRule;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;

/// Whether operator spans are on in this process (set once tracing starts): sessions built
/// afterwards wrap their physical plans in datafusion-tracing's spans.
static OPERATOR_SPANS: AtomicBool = AtomicBool::new(false);

/// The `[tracing]` section of the server config (every key optional; the `OTEL_*` variables
/// fill in what it leaves out).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceSettings {
    /// The OTLP collector: `http://host:4317` (gRPC) or `http://host:4318` (HTTP; the
    /// `/v1/traces` path is added).
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf`.
    pub protocol: Option<String>,
    /// `service.name` of the spans (`vcfq` unless `OTEL_SERVICE_NAME` says otherwise).
    pub service_name: Option<String>,
}

/// Tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A setting is wrong.
    #[error("tracing: {0}")]
    Settings(String),
    /// The OTLP exporter cannot be made.
    #[error("tracing: cannot make the OTLP exporter: {0}")]
    Exporter(String),
    /// A tracing subscriber is already installed in this process.
    #[error("tracing: already set up in this process")]
    AlreadySet,
}

/// Whether the `OTEL_*` variables ask for traces: an endpoint is set and the SDK is not
/// disabled (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`).
pub fn requested_by_environment() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.trim().is_empty());
    let is = |k: &str, v: &str| std::env::var(k).is_ok_and(|x| x.trim().eq_ignore_ascii_case(v));
    !is("OTEL_SDK_DISABLED", "true")
        && !is("OTEL_TRACES_EXPORTER", "none")
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// Whether operator spans are on (tracing was started in this process).
pub fn operator_spans() -> bool {
    OPERATOR_SPANS.load(Ordering::Relaxed)
}

/// Traces being exported; [`Tracing::shutdown`] sends what is left.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Starts exporting spans (call inside the tokio runtime: the gRPC exporter spawns its
    /// connection there). Installs the process-wide subscriber: vcfq's spans and its
    /// operators' go to OTLP, nothing else.
    pub fn start(settings: &TraceSettings) -> Result<Tracing, TelemetryError> {
        let protocol = match settings.protocol.as_deref().map(str::trim) {
            None => None,
            Some("grpc") => Some(Protocol::Grpc),
            Some("http/protobuf") => Some(Protocol::HttpBinary),
            Some(other) => {
                return Err(TelemetryError::Settings(format!(
                    "protocol {other:?}: expected \"grpc\" or \"http/protobuf\""
                )));
            }
        };
        let exporter = match protocol.or_else(protocol_from_environment) {
            Some(Protocol::HttpBinary) => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary);
                if let Some(endpoint) = &settings.endpoint {
                    b = b.with_endpoint(http_traces_endpoint(endpoint));
                }
                b.build()
            }
            // gRPC when asked for, and when nothing says which (vcfq's default: port 4317)
            _ => {
                let mut b = opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_protocol(Protocol::Grpc);
                if let Some(endpoint) = &settings.endpoint {
                    b = b.with_endpoint(endpoint.clone());
                }
                b.build()
            }
        }
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource(settings.service_name.as_deref()))
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("vcfq"))
            .with_filter(Targets::new().with_target("vcfq", tracing::Level::INFO));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .map_err(|_| TelemetryError::AlreadySet)?;
        OPERATOR_SPANS.store(true, Ordering::Relaxed);
        Ok(Tracing { provider })
    }

    /// Exports the spans still queued and stops (waits at most a few seconds for the
    /// collector).
    pub async fn shutdown(self) {
        let provider = self.provider;
        let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
    }
}

/// `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`, when it names a transport vcfq has.
fn protocol_from_environment() -> Option<Protocol> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok())
    .find_map(|v| match v.trim() {
        "grpc" => Some(Protocol::Grpc),
        "http/protobuf" => Some(Protocol::HttpBinary),
        _ => None,
    })
}

/// An HTTP collector's base address with the traces path, as the variable
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is read.
fn http_traces_endpoint(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The spans' resource: `OTEL_SERVICE_NAME`/`OTEL_RESOURCE_ATTRIBUTES`, else `vcfq` (or the
/// configured name) and vcfq's version.
fn resource(service_name: Option<&str>) -> Resource {
    let from_env = Resource::builder().build();
    let unnamed = from_env
        .get(&opentelemetry::Key::new("service.name"))
        .is_none_or(|v| v.as_str().starts_with("unknown_service"));
    if !unnamed && service_name.is_none() {
        return from_env;
    }
    Resource::builder()
        .with_service_name(service_name.unwrap_or("vcfq").to_string())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build()
}

/// The span of one statement run by the CLI or the shell: the root of its trace, the parent
/// of its operators' spans (a disabled span when tracing is off).
pub fn statement_span(sql: &str) -> tracing::Span {
    tracing::info_span!(
        target: "vcfq::cli",
        "statement",
        otel.name = "statement",
        db.query.text = sql
    )
}

/// Makes `span` a child of the W3C `traceparent` (and `tracestate`) a caller sent, if any;
/// without one the span starts a trace of its own.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    struct Headers<'a>(&'a http::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(http::HeaderName::as_str).collect()
        }
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
}

/// The physical optimizer rule that wraps every operator in a span recording its metrics
/// (the last rule, so that EXPLAIN and vcfq's own rules see the plain plan). Row previews are
/// off: genomic rows never go into traces.
pub fn operator_spans_rule() -> Arc<dyn PhysicalOptimizerRule + Send + Sync> {
    let options = datafusion_tracing::InstrumentationOptions::builder()
        .record_metrics(true)
        .preview_limit(0)
        .build();
    datafusion_tracing::instrument_with_info_spans!(
        target: "vcfq::exec",
        options: options,
        datafusion.metrics.records_scanned = tracing::field::Empty,
        datafusion.metrics.messages_read = tracing::field::Empty,
        datafusion.metrics.messages_skipped = tracing::field::Empty,
        datafusion.metrics.duplicates_dropped = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_endpoints_get_the_traces_path_once() {
        assert_eq!(
            http_traces_endpoint("http://c:4318"),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            http_traces_endpoint("http://c:4318/"),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            http_traces_endpoint("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
