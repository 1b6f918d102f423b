//! Errors → gRPC status codes, in one place (as influxdb3's `service_common/src/error.rs`).
//!
//! | error | code |
//! |---|---|
//! | SQL syntax, unknown column, bad argument, bad option | `INVALID_ARGUMENT` |
//! | table, file, prepared statement or query handle not found | `NOT_FOUND` |
//! | feature not implemented | `UNIMPLEMENTED` |
//! | the data a valid query reads is bad (malformed record) | `FAILED_PRECONDITION` |
//! | memory limit, too many sessions | `RESOURCE_EXHAUSTED` |
//! | no/invalid credentials, expired token, a refused JWT or client certificate | `UNAUTHENTICATED` |
//! | file not readable by the server; a path, table or location the user's grants and the
//! server's file roots do not allow | `PERMISSION_DENIED` |
//! | I/O failure reading data, a broker that is down or times out | `UNAVAILABLE` |
//! | query cancelled | `CANCELLED` |
//! | a bug of ours | `INTERNAL` |

use arrow_flight::error::FlightError;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use tonic::{Code, Status};

use super::auth::AuthError;
use crate::VcfError;
use crate::access::AccessError;
use crate::stream::StreamError;

/// The gRPC status for a DataFusion error; the message is the error on one line.
pub fn status_from_datafusion(e: DataFusionError) -> Status {
    let code = datafusion_code(&e);
    let message = crate::error::one_line(&anyhow::Error::new(e));
    Status::new(code, message)
}

/// The gRPC status for an authentication failure.
pub fn status_from_auth(e: &AuthError) -> Status {
    let code = match e {
        AuthError::Missing
        | AuthError::BadCredentials
        | AuthError::Malformed(_)
        | AuthError::UnknownToken
        | AuthError::Rejected(_)
        | AuthError::Expired => Code::Unauthenticated,
        AuthError::Unavailable(_) => Code::Unavailable,
    };
    Status::new(code, e.to_string())
}

/// A gRPC code as gRPC names it (`PermissionDenied` → `PERMISSION_DENIED`), for the audit
/// trail and the metrics.
pub fn code_name(code: Code) -> String {
    let mut out = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The gRPC status for an error met while encoding or decoding Flight data.
pub fn status_from_flight(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(status) => *status,
        FlightError::ExternalError(inner) => match inner.downcast::<DataFusionError>() {
            Ok(df) => status_from_datafusion(*df),
            Err(other) => Status::internal(other.to_string()),
        },
        FlightError::Arrow(arrow) => {
            status_from_datafusion(DataFusionError::ArrowError(Box::new(arrow), None))
        }
        FlightError::NotYetImplemented(m) => Status::unimplemented(m),
        FlightError::ProtocolError(m) | FlightError::DecodeError(m) => Status::invalid_argument(m),
    }
}

fn datafusion_code(e: &DataFusionError) -> Code {
    match e {
        DataFusionError::SQL(..) | DataFusionError::Configuration(_) => Code::InvalidArgument,
        DataFusionError::Plan(message) => {
            if is_not_found(message) {
                Code::NotFound
            } else {
                Code::InvalidArgument
            }
        }
        DataFusionError::SchemaError(..) => Code::InvalidArgument,
        DataFusionError::NotImplemented(_) => Code::Unimplemented,
        DataFusionError::Execution(_) => Code::FailedPrecondition,
        DataFusionError::ResourcesExhausted(_) => Code::ResourceExhausted,
        DataFusionError::IoError(io) => io_code(io.kind()),
        DataFusionError::ArrowError(arrow, _) => arrow_code(arrow),
        DataFusionError::ParquetError(_) => Code::FailedPrecondition,
        DataFusionError::ObjectStore(e) => object_store_code(e),
        DataFusionError::External(inner) => external_code(inner.as_ref()),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_code(inner)
        }
        DataFusionError::Shared(inner) => datafusion_code(inner),
        DataFusionError::Collection(errors) => {
            errors.first().map_or(Code::Internal, datafusion_code)
        }
        DataFusionError::Substrait(_) => Code::InvalidArgument,
        DataFusionError::ExecutionJoin(_)
        | DataFusionError::Internal(_)
        | DataFusionError::Ffi(_) => Code::Internal,
    }
}

/// The code for an error wrapped by DataFusion or Arrow, by its type.
fn external_code(inner: &(dyn std::error::Error + Send + Sync + 'static)) -> Code {
    if inner.is::<AccessError>() {
        Code::PermissionDenied
    } else if let Some(vcf) = inner.downcast_ref::<VcfError>() {
        vcf_code(vcf)
    } else if let Some(stream) = inner.downcast_ref::<StreamError>() {
        if stream.retryable {
            Code::Unavailable
        } else {
            Code::FailedPrecondition
        }
    } else if let Some(df) = inner.downcast_ref::<DataFusionError>() {
        datafusion_code(df)
    } else if let Some(io) = inner.downcast_ref::<std::io::Error>() {
        io_code(io.kind())
    } else if let Some(arrow) = inner.downcast_ref::<ArrowError>() {
        arrow_code(arrow)
    } else if let Some(os) = inner.downcast_ref::<datafusion::object_store::Error>() {
        object_store_code(os)
    } else {
        Code::Internal
    }
}

/// DataFusion reports a missing table as a plan error of its own, with no type to tell it
/// by; vcfq's own errors are typed ([`VcfError`], [`StreamError`]).
fn is_not_found(message: &str) -> bool {
    message.contains("table '") && message.contains("' not found")
}

fn object_store_code(e: &datafusion::object_store::Error) -> Code {
    use datafusion::object_store::Error;
    match e {
        Error::NotFound { .. } => Code::NotFound,
        Error::PermissionDenied { .. } => Code::PermissionDenied,
        Error::Unauthenticated { .. } => Code::Unauthenticated,
        Error::InvalidPath { .. } => Code::InvalidArgument,
        Error::NotSupported { .. } | Error::NotImplemented { .. } => Code::Unimplemented,
        _ => Code::Unavailable,
    }
}

fn vcf_code(e: &VcfError) -> Code {
    match e {
        VcfError::NotFound(_) => Code::NotFound,
        VcfError::Invalid(_) => Code::InvalidArgument,
        VcfError::Open { source, .. } | VcfError::Io { source, .. } => io_code(source.kind()),
        VcfError::Header { .. } | VcfError::Data { .. } | VcfError::Write { .. } => {
            Code::FailedPrecondition
        }
    }
}

fn io_code(kind: std::io::ErrorKind) -> Code {
    use std::io::ErrorKind;
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof => {
            Code::FailedPrecondition
        }
        ErrorKind::OutOfMemory => Code::ResourceExhausted,
        _ => Code::Unavailable,
    }
}

fn arrow_code(e: &ArrowError) -> Code {
    match e {
        ArrowError::ExternalError(inner) => external_code(inner.as_ref()),
        ArrowError::CastError(_)
        | ArrowError::ParseError(_)
        | ArrowError::InvalidArgumentError(_)
        | ArrowError::DivideByZero
        | ArrowError::ArithmeticOverflow(_)
        | ArrowError::ComputeError(_)
        | ArrowError::SchemaError(_) => Code::InvalidArgument,
        ArrowError::MemoryError(_) => Code::ResourceExhausted,
        ArrowError::IoError(_, io) => io_code(io.kind()),
        ArrowError::NotYetImplemented(_) => Code::Unimplemented,
        ArrowError::CsvError(_)
        | ArrowError::JsonError(_)
        | ArrowError::AvroError(_)
        | ArrowError::IpcError(_)
        | ArrowError::ParquetError(_)
        | ArrowError::CDataInterface(_)
        | ArrowError::DictionaryKeyOverflowError
        | ArrowError::RunEndIndexOverflowError
        | ArrowError::OffsetOverflowError(_) => Code::FailedPrecondition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn status_of(sql: &str) -> Status {
        let ctx = crate::SessionBuilder::new().build().unwrap();
        let result = async { ctx.sql(sql).await?.collect().await }.await;
        status_from_datafusion(result.expect_err(sql))
    }

    #[tokio::test]
    async fn each_kind_of_error_gets_its_grpc_code() {
        let bad_sql = status_of("SELEC 1").await;
        assert_eq!(bad_sql.code(), Code::InvalidArgument, "{bad_sql:?}");
        let missing_table = status_of("SELECT * FROM no_such_table").await;
        assert_eq!(missing_table.code(), Code::NotFound, "{missing_table:?}");
        assert!(missing_table.message().contains("no_such_table"));
        let missing_file = status_of("SELECT * FROM '/nonexistent/x.vcf'").await;
        assert_eq!(missing_file.code(), Code::NotFound, "{missing_file:?}");
        let unknown_column = status_of("SELECT nope FROM (VALUES (1)) t(a)").await;
        assert_eq!(unknown_column.code(), Code::InvalidArgument);
        assert!(unknown_column.message().contains("nope"));
        let bad_value = status_of("SELECT CAST('x' AS INT)").await;
        assert_eq!(bad_value.code(), Code::InvalidArgument, "{bad_value:?}");
        let limit = status_from_datafusion(DataFusionError::ResourcesExhausted("memory".into()));
        assert_eq!(limit.code(), Code::ResourceExhausted);
        let bug = status_from_datafusion(DataFusionError::Internal("oops".into()));
        assert_eq!(bug.code(), Code::Internal);
        let data = status_from_datafusion(
            VcfError::Data {
                path: "a.vcf".into(),
                line: 3,
                message: "bad POS".into(),
            }
            .into(),
        );
        assert_eq!(data.code(), Code::FailedPrecondition);
        assert!(data.message().contains("a.vcf:3"));
        let broker = status_from_datafusion(
            StreamError::transient("kafka h:1/t", "message not delivered: timed out").into(),
        );
        assert_eq!(broker.code(), Code::Unavailable);
        assert!(broker.message().contains("kafka h:1/t"));
    }

    #[test]
    fn auth_failures_are_unauthenticated() {
        for e in [
            AuthError::Missing,
            AuthError::BadCredentials,
            AuthError::Expired,
        ] {
            assert_eq!(status_from_auth(&e).code(), Code::Unauthenticated);
        }
    }
}
