//! What the codecs of every kind of node share: the errors of bytes that do not decode, and
//! Arrow schemas as bytes (datafusion-proto's `Schema`).

use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::DataFusionError;
use datafusion::error::Result;
use datafusion_proto::protobuf as df;
use prost::Message;

/// An error of vcfq's own making while encoding or decoding (not the user's).
pub(super) fn internal(e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(e.to_string())
}

/// Bytes of `what` (e.g. "VCF scan") that another vcfq process sent and that do not decode.
pub(super) fn decode_error(what: &str, e: prost::DecodeError) -> DataFusionError {
    DataFusionError::Internal(format!(
        "cannot decode a {what} sent by a vcfq process: {e}"
    ))
}

/// A schema as bytes.
pub(super) fn schema_bytes(schema: &Schema) -> Result<Vec<u8>> {
    Ok(df::Schema::try_from(schema)?.encode_to_vec())
}

/// The schema of [`schema_bytes`]'s bytes.
pub(super) fn schema_of(bytes: &[u8]) -> Result<SchemaRef> {
    let proto = df::Schema::decode(bytes).map_err(|e| decode_error("schema", e))?;
    Ok(Arc::new(Schema::try_from(&proto)?))
}
