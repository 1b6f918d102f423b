//! Text functions evaluated once per distinct value of a dictionary-encoded column.
//!
//! DataFusion casts a dictionary column to plain text before calling a text function, so
//! `regexp_like(GT, '[1-9]')` over a cohort's 50 million calls matches 50 million strings.
//! [`PerDictionaryValue`] wraps such a function: when its first argument is a dictionary and
//! the others are constants, the function runs over the dictionary's few values and the
//! results are taken by key; otherwise the wrapped function runs as it would.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::type_coercion::functions::fields_with_udf;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// The functions wrapped when a session is built: text predicates that queries over GT and
/// sample names use.
pub const WRAPPED: [&str; 5] = [
    "regexp_like",
    "starts_with",
    "ends_with",
    "contains",
    "strpos",
];

/// A text function that, given a dictionary as its first argument, runs once per value.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PerDictionaryValue {
    inner: ScalarUDF,
    signature: Signature,
}

impl PerDictionaryValue {
    /// Wraps `inner`.
    pub fn new(inner: ScalarUDF) -> Self {
        let volatility = inner.signature().volatility;
        PerDictionaryValue {
            inner,
            signature: Signature::user_defined(volatility),
        }
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The argument types with a dictionary of text first replaced by its value type.
fn plain(arg_types: &[DataType]) -> Vec<DataType> {
    arg_types
        .iter()
        .enumerate()
        .map(|(i, t)| match t {
            DataType::Dictionary(_, v) if i == 0 && is_text(v) => v.as_ref().clone(),
            other => other.clone(),
        })
        .collect()
}

/// A field of dictionary-encoded text as its value type.
fn plain_field(f: &FieldRef) -> FieldRef {
    match f.data_type() {
        DataType::Dictionary(_, v) if is_text(v) => {
            Arc::new(f.as_ref().clone().with_data_type(v.as_ref().clone()))
        }
        _ => Arc::clone(f),
    }
}

impl ScalarUDFImpl for PerDictionaryValue {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(&plain(arg_types))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let fields: Vec<FieldRef> = args.arg_fields.iter().map(plain_field).collect();
        self.inner.return_field_from_args(ReturnFieldArgs {
            arg_fields: &fields,
            scalar_arguments: args.scalar_arguments,
        })
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let fields: Vec<Arc<Field>> = plain(arg_types)
            .into_iter()
            .map(|t| Arc::new(Field::new("a", t, true)))
            .collect();
        let mut coerced: Vec<DataType> = fields_with_udf(&fields, &self.inner)?
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        // keep the dictionary, over the value type the function wants
        if let (Some(DataType::Dictionary(k, v)), Some(first)) =
            (arg_types.first(), coerced.first_mut())
            && is_text(v)
            && is_text(first)
        {
            *first = DataType::Dictionary(k.clone(), Box::new(first.clone()));
        }
        Ok(coerced)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let ScalarFunctionArgs {
            mut args,
            mut arg_fields,
            number_rows,
            return_field,
            config_options,
        } = args;
        let dictionary = match args.first() {
            Some(ColumnarValue::Array(a)) => a
                .as_any_dictionary_opt()
                .map(|d| (d.values().clone(), d.keys().slice(0, d.keys().len()))),
            _ => None,
        };
        let rest_constant = args
            .iter()
            .skip(1)
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let plain_field = |f: &Arc<Field>| match f.data_type() {
            DataType::Dictionary(_, v) => {
                Arc::new(f.as_ref().clone().with_data_type(v.as_ref().clone()))
            }
            _ => Arc::clone(f),
        };
        if let Some(first) = arg_fields.first_mut() {
            *first = plain_field(first);
        }
        match dictionary {
            Some((values, keys)) if rest_constant => {
                let rows = values.len();
                args[0] = ColumnarValue::Array(values);
                let per_value = self.inner.invoke_with_args(ScalarFunctionArgs {
                    args,
                    arg_fields,
                    number_rows: rows,
                    return_field,
                    config_options,
                })?;
                let per_value = per_value.into_array(rows)?;
                Ok(ColumnarValue::Array(take(
                    per_value.as_ref(),
                    keys.as_ref(),
                    None,
                )?))
            }
            _ => {
                if let Some(ColumnarValue::Array(a)) = args.first()
                    && let DataType::Dictionary(_, v) = a.data_type()
                {
                    args[0] = ColumnarValue::Array(cast(a, v)?);
                }
                self.inner.invoke_with_args(ScalarFunctionArgs {
                    args,
                    arg_fields,
                    number_rows,
                    return_field,
                    config_options,
                })
            }
        }
    }
}

/// `inner`, evaluated per dictionary value.
pub fn per_dictionary_value(inner: &ScalarUDF) -> ScalarUDF {
    ScalarUDF::new_from_impl(PerDictionaryValue::new(inner.clone()))
}
