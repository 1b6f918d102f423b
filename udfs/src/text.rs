//! `embed_text(text)`: sentence embeddings from all-MiniLM-L6-v2, run in Rust (candle's BERT,
//! the `tokenizers` crate), as sentence-transformers makes them: the text cut to
//! [`MAX_TOKENS`] tokens, the mean of the last layer over the real tokens (padding left out),
//! scaled to length 1. `FixedSizeList<Float32>` of [`DIMENSIONS`]; NULL text, NULL vector.
//!
//! The model is read once per process, on first use, from `$VCFQ_MODELS/all-MiniLM-L6-v2` (by
//! default `~/.cache/vcfq/models/…`), where `scripts/models` puts it; nothing is downloaded at
//! run time. A column is embedded [`CHUNK`] texts at a time, texts of similar length together
//! (less padding), so memory stays bounded whatever the batch.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use tokenizers::{Tokenizer, TruncationParams};

/// Elements of a text embedding (all-MiniLM-L6-v2's hidden size).
pub const DIMENSIONS: usize = 384;
/// Tokens of a text at most (longer texts are cut, as sentence-transformers cuts them).
pub const MAX_TOKENS: usize = 256;
/// Texts run through the model at once.
pub const CHUNK: usize = 16;
/// The model's directory under the models directory.
pub const MODEL: &str = "all-MiniLM-L6-v2";

/// Where the model is read from: `$VCFQ_MODELS/all-MiniLM-L6-v2`, or under
/// `~/.cache/vcfq/models`.
pub fn model_dir() -> PathBuf {
    let root = std::env::var_os("VCFQ_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/vcfq/models")
        });
    root.join(MODEL)
}

/// The model and its tokenizer.
pub struct TextModel {
    bert: BertModel,
    tokenizer: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for TextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TextModel")
    }
}

impl TextModel {
    /// Reads the model in `dir`; the error is one line naming what is missing and how to
    /// install it.
    pub fn load(dir: &std::path::Path) -> std::result::Result<TextModel, String> {
        let missing: Vec<&str> = ["model.safetensors", "tokenizer.json", "config.json"]
            .into_iter()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "embed_text: the model {MODEL} is not installed ({} missing in {}): run scripts/models",
                missing.join(", "),
                dir.display()
            ));
        }
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            format!("embed_text: {what} in {}: {e}", dir.display())
        };
        let config: Config = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| bad("cannot read config.json", &e))
            .and_then(|t| serde_json::from_str(&t).map_err(|e| bad("bad config.json", &e)))?;
        let device = Device::Cpu;
        // SAFETY: the file is mapped read-only and not changed while vcfq runs (scripts/models
        // replaces files by renaming new ones into place)
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[dir.join("model.safetensors")],
                DType::F32,
                &device,
            )
        }
        .map_err(|e| bad("cannot read model.safetensors", &e))?;
        let bert = BertModel::load(vb, &config).map_err(|e| bad("cannot load the model", &e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| bad("cannot read tokenizer.json", &e))?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| bad("cannot set up the tokenizer", &e))?;
        tokenizer.with_padding(None);
        let model = TextModel {
            bert,
            tokenizer,
            device,
        };
        // the hidden size is the result type's, fixed at planning
        let probe = model
            .embed(&[""])
            .map_err(|e| bad("cannot run the model", &e))?;
        if probe.first().map(Vec::len) != Some(DIMENSIONS) {
            return Err(bad("not a model of 384 dimensions", &"check config.json"));
        }
        Ok(model)
    }

    /// The process's model, read on first use ([`model_dir`]); a failure is not kept, so a
    /// model installed while a server runs is found by the next call.
    pub fn shared() -> std::result::Result<Arc<TextModel>, String> {
        static MODEL: Mutex<Option<Arc<TextModel>>> = Mutex::new(None);
        let mut model = MODEL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(m) = model.as_ref() {
            return Ok(Arc::clone(m));
        }
        let loaded = Arc::new(TextModel::load(&model_dir())?);
        *model = Some(Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Embeddings of `texts` (all at once: callers keep it to [`CHUNK`]).
    pub fn embed(&self, texts: &[&str]) -> std::result::Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| format!("cannot tokenise: {e}"))?;
        let longest = encodings
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0);
        let (mut ids, mut types, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for e in &encodings {
            let n = e.get_ids().len();
            ids.extend_from_slice(e.get_ids());
            types.extend_from_slice(e.get_type_ids());
            mask.extend(std::iter::repeat_n(1u32, n));
            for v in [&mut ids, &mut types, &mut mask] {
                v.extend(std::iter::repeat_n(0u32, longest - n));
            }
        }
        let shape = (texts.len(), longest);
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let ids = Tensor::from_vec(ids, shape, &self.device)?;
            let types = Tensor::from_vec(types, shape, &self.device)?;
            let mask = Tensor::from_vec(mask, shape, &self.device)?;
            let hidden = self.bert.forward(&ids, &types, Some(&mask))?;
            // mean over the real tokens, then length 1
            let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let mean = summed.broadcast_div(&mask.sum(1)?)?;
            let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        };
        run().map_err(|e| format!("the model failed: {e}"))
    }
}

/// `embed_text(text)` (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct EmbedText {
    signature: Signature,
}

/// The text-embedding function.
pub fn embed_text() -> ScalarUDF {
    ScalarUDF::new_from_impl(EmbedText {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

fn vector_type() -> DataType {
    DataType::FixedSizeList(
        Arc::new(Field::new_list_field(DataType::Float32, true)),
        DIMENSIONS as i32,
    )
}

impl ScalarUDFImpl for EmbedText {
    fn name(&self) -> &str {
        "embed_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(vector_type())
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null] => {
                Ok(vec![DataType::Utf8])
            }
            [DataType::Dictionary(_, v)] if v.as_ref() == &DataType::Utf8 => {
                Ok(vec![DataType::Utf8])
            }
            [other] => plan_err!("embed_text takes text, got {other}"),
            args => plan_err!("embed_text takes 1 argument, got {}", args.len()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return plan_err!("embed_text takes 1 argument");
        };
        crate::unary(arg, |array| embed_column(&cast(array, &DataType::Utf8)?))
    }
}

fn embed_column(texts: &ArrayRef) -> Result<ArrayRef> {
    let texts = texts.as_string::<i32>();
    let rows = texts.len();
    let mut values = vec![0f32; rows * DIMENSIONS];
    let valid: Vec<bool> = (0..rows).map(|i| texts.is_valid(i)).collect();
    let mut order: Vec<usize> = (0..rows).filter(|&i| valid[i]).collect();
    if !order.is_empty() {
        let model = match TextModel::shared() {
            Ok(m) => m,
            Err(e) => return exec_err!("{e}"),
        };
        // similar lengths together: a chunk is padded to its longest text
        order.sort_by_key(|&i| texts.value(i).len());
        for chunk in order.chunks(CHUNK) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts.value(i)).collect();
            let vectors = match model.embed(&batch) {
                Ok(v) => v,
                Err(e) => return exec_err!("embed_text: {e}"),
            };
            for (&row, v) in chunk.iter().zip(vectors) {
                values[row * DIMENSIONS..(row + 1) * DIMENSIONS].copy_from_slice(&v);
            }
        }
    }
    Ok(Arc::new(FixedSizeListArray::try_new(
        Arc::new(Field::new_list_field(DataType::Float32, true)),
        DIMENSIONS as i32,
        Arc::new(Float32Array::from(values)),
        Some(valid.into()),
    )?))
}
