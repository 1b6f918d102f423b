//! Vector distances: `cosine_distance(a, b)`, `l2_distance(a, b)`, `inner_product(a, b)`.
//!
//! Vectors are `FixedSizeList<Float32>` columns (what embeddings and Lance vector columns are),
//! other lists of numbers, or constants (`[0.1, 0.2, …]`, cast once at planning). Vectors of
//! `Float32` are computed as `Float32`, without the conversion to `Float64` lists that
//! DataFusion's built-in `cosine_distance` and `inner_product` make (these functions replace
//! them); the result is `Float32` then, as Lance's `_distance` is. Only when neither side has
//! `Float32` (or `Float16`) items are both read as `Float64`, with a `Float64` result.
//!
//! - `cosine_distance` = 1 − a·b / (‖a‖ ‖b‖), in [0, 2]; NULL when either vector is all zeros
//!   (as DataFusion's built-in).
//! - `l2_distance` = ‖a − b‖, the Euclidean distance (not its square; Lance's `l2` metric
//!   orders the same).
//! - `inner_product` (also `dot_product`) = a·b (larger is more similar).
//!
//! A NULL vector gives NULL. Vectors of different lengths, or a NULL element inside a vector,
//! fail the query naming the function and the row. Sums run over 32 lanes at once (SIMD:
//! SSE2, or AVX2 where the CPU has it), always in the same order and without fused
//! multiply-adds, so a distance is the same wherever it is computed.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, GenericListArray, PrimitiveArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Float32Type, Float64Type};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which distance a [`Distance`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// 1 − cosine similarity.
    Cosine,
    /// Euclidean distance.
    L2,
    /// Dot product.
    InnerProduct,
}

impl Metric {
    /// The SQL name of the function.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine_distance",
            Metric::L2 => "l2_distance",
            Metric::InnerProduct => "inner_product",
        }
    }
}

/// One of the distance functions (see the module docs).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Distance {
    metric: Metric,
    signature: Signature,
    aliases: Vec<String>,
}

impl Distance {
    /// The function computing `metric`.
    pub fn new(metric: Metric) -> Self {
        // DataFusion's built-in `inner_product` is also `dot_product`: taking that name too
        // leaves no built-in behind under either name (a session rebuilt from its functions
        // would otherwise bring it back in whichever order they come)
        let aliases = match metric {
            Metric::InnerProduct => vec!["dot_product".to_string()],
            _ => Vec::new(),
        };
        Distance {
            metric,
            signature: Signature::user_defined(Volatility::Immutable),
            aliases,
        }
    }
}

/// The three distance functions.
pub fn all() -> Vec<ScalarUDF> {
    [Metric::Cosine, Metric::L2, Metric::InnerProduct]
        .into_iter()
        .map(|m| ScalarUDF::new_from_impl(Distance::new(m)))
        .collect()
}

/// The item type of a vector type, `None` when it is not a list of numbers.
fn item_type(t: &DataType) -> Option<&DataType> {
    let item = match t {
        DataType::FixedSizeList(f, _)
        | DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => f.data_type(),
        _ => return None,
    };
    (item.is_numeric() || item == &DataType::Null).then_some(item)
}

/// What both vectors are read as: `Float32` when either side has `Float32` or `Float16` items.
fn element_type(args: &[DataType]) -> DataType {
    let narrow = args
        .iter()
        .filter_map(item_type)
        .any(|t| matches!(t, DataType::Float32 | DataType::Float16));
    if narrow {
        DataType::Float32
    } else {
        DataType::Float64
    }
}

impl ScalarUDFImpl for Distance {
    fn name(&self) -> &str {
        self.metric.name()
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(element_type(arg_types))
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        if arg_types.len() != 2 {
            return plan_err!(
                "{name} takes two vectors, got {} arguments",
                arg_types.len()
            );
        }
        let element = element_type(arg_types);
        arg_types
            .iter()
            .map(|t| {
                let item = Arc::new(Field::new_list_field(element.clone(), true));
                match t {
                    DataType::Null => Ok(DataType::Null),
                    // already right, whatever its item field is named or marked (a cast would
                    // copy every vector of every batch)
                    DataType::FixedSizeList(..) | DataType::List(_)
                        if item_type(t) == Some(&element) =>
                    {
                        Ok(t.clone())
                    }
                    DataType::FixedSizeList(_, n) if item_type(t).is_some() => {
                        Ok(DataType::FixedSizeList(item, *n))
                    }
                    _ if item_type(t).is_some() => Ok(DataType::List(item)),
                    _ => plan_err!(
                        "{name} takes vectors (FixedSizeList<Float32> or lists of numbers), got {t}"
                    ),
                }
            })
            .collect()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        // a constant (the query vector) stays one row: it is not copied for every row
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if scalars { 1 } else { args.number_rows };
        let arrays = args
            .args
            .iter()
            .map(|a| {
                Ok(match a {
                    ColumnarValue::Array(array) => (Arc::clone(array), false),
                    ColumnarValue::Scalar(s) => (s.to_array_of_size(1)?, true),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let [a, b] = &arrays[..] else {
            return exec_err!("{} takes two vectors", self.name());
        };
        let out = match args.return_field.data_type() {
            DataType::Float32 => distances::<Float32Type>(self.metric, a, b, rows)?,
            _ => distances::<Float64Type>(self.metric, a, b, rows)?,
        };
        if scalars {
            Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&out, 0)?,
            ))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// A float type the distances are computed in.
pub trait Element: Copy + Default + PartialOrd + std::fmt::Debug {
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// `self + other`.
    fn add(self, other: Self) -> Self;
    /// `self - other`.
    fn sub(self, other: Self) -> Self;
    /// `self * other`.
    fn mul(self, other: Self) -> Self;
    /// `self / other`.
    fn div(self, other: Self) -> Self;
    /// The square root.
    fn sqrt(self) -> Self;
}

macro_rules! element {
    ($t:ty) => {
        impl Element for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn add(self, other: Self) -> Self {
                self + other
            }
            #[inline(always)]
            fn sub(self, other: Self) -> Self {
                self - other
            }
            #[inline(always)]
            fn mul(self, other: Self) -> Self {
                self * other
            }
            #[inline(always)]
            fn div(self, other: Self) -> Self {
                self / other
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
        }
    };
}
element!(f32);
element!(f64);

/// Lanes summed side by side: four AVX2 registers (eight SSE2 ones), so that each add waits
/// on one made four instructions earlier rather than on the one just before (with one
/// register the adds' latency, not memory, was the limit).
const LANES: usize = 32;

/// The lanes added up, always in the same order.
#[inline(always)]
fn total<T: Element>(lanes: [T; LANES]) -> T {
    let mut s = T::ZERO;
    for v in lanes {
        s = s.add(v);
    }
    s
}

/// a·b.
#[inline(always)]
pub fn dot<T: Element>(a: &[T], b: &[T]) -> T {
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let mut acc = [T::ZERO; LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            acc[k] = acc[k].add(x[k].mul(y[k]));
        }
    }
    let mut s = total(acc);
    for (x, y) in ra.iter().zip(rb) {
        s = s.add(x.mul(*y));
    }
    s
}

/// ‖a − b‖².
#[inline(always)]
pub fn squared_l2<T: Element>(a: &[T], b: &[T]) -> T {
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let mut acc = [T::ZERO; LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            let d = x[k].sub(y[k]);
            acc[k] = acc[k].add(d.mul(d));
        }
    }
    let mut s = total(acc);
    for (x, y) in ra.iter().zip(rb) {
        let d = x.sub(*y);
        s = s.add(d.mul(d));
    }
    s
}

/// 1 − a·b / (‖a‖ ‖b‖), given ‖b‖² (`b_norm2`); `None` when either vector is all zeros.
#[inline(always)]
pub fn cosine<T: Element>(a: &[T], b: &[T], b_norm2: T) -> Option<T> {
    let (ca, ra) = a.as_chunks::<LANES>();
    let (cb, rb) = b.as_chunks::<LANES>();
    let mut ab = [T::ZERO; LANES];
    let mut aa = [T::ZERO; LANES];
    for (x, y) in ca.iter().zip(cb) {
        for k in 0..LANES {
            ab[k] = ab[k].add(x[k].mul(y[k]));
            aa[k] = aa[k].add(x[k].mul(x[k]));
        }
    }
    let (mut ab, mut aa) = (total(ab), total(aa));
    for (x, y) in ra.iter().zip(rb) {
        ab = ab.add(x.mul(*y));
        aa = aa.add(x.mul(*x));
    }
    if aa == T::ZERO || b_norm2 == T::ZERO {
        return None;
    }
    let mut similarity = ab.div(aa.mul(b_norm2).sqrt());
    // rounding may step just outside [-1, 1]
    if similarity > T::ONE {
        similarity = T::ONE;
    }
    let minus_one = T::ZERO.sub(T::ONE);
    if similarity < minus_one {
        similarity = minus_one;
    }
    Some(T::ONE.sub(similarity))
}

/// The vectors of one argument: where each row's values start and end in `values`.
struct Vectors<'a, T: ArrowPrimitiveType> {
    values: &'a [T::Native],
    /// Nulls among the items (only kept when there are some).
    item_nulls: Option<&'a NullBuffer>,
    nulls: Option<&'a NullBuffer>,
    shape: Shape<'a>,
    /// One row for every row (a constant).
    constant: bool,
}

enum Shape<'a> {
    Fixed(usize),
    Offsets(&'a [i32]),
    /// A NULL constant or column of type Null.
    AllNull,
}

impl<'a, T: ArrowPrimitiveType> Vectors<'a, T> {
    fn new(array: &'a ArrayRef, constant: bool) -> Result<Self> {
        let (items, shape) = match array.data_type() {
            DataType::FixedSizeList(_, n) => {
                let list: &FixedSizeListArray = array.as_fixed_size_list();
                (list.values(), Shape::Fixed(*n as usize))
            }
            DataType::List(_) => {
                let list: &GenericListArray<i32> = array.as_list();
                (list.values(), Shape::Offsets(list.value_offsets()))
            }
            DataType::Null => {
                return Ok(Vectors {
                    values: &[],
                    item_nulls: None,
                    nulls: None,
                    shape: Shape::AllNull,
                    constant,
                });
            }
            other => return exec_err!("a vector cannot be of type {other}"),
        };
        let items: &PrimitiveArray<T> = items.as_primitive_opt().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(format!(
                "vector items of type {} after coercion",
                items.data_type()
            ))
        })?;
        Ok(Vectors {
            values: items.values(),
            item_nulls: items.nulls().filter(|n| n.null_count() > 0),
            nulls: array.nulls().filter(|n| n.null_count() > 0),
            shape,
            constant,
        })
    }

    /// Row `i`'s vector (`None` when NULL), or where its items sit when one of them is NULL
    /// (`Err(row)`).
    #[inline(always)]
    fn get(&self, i: usize) -> std::result::Result<Option<&'a [T::Native]>, ()> {
        let i = if self.constant { 0 } else { i };
        if self.nulls.is_some_and(|n| n.is_null(i)) {
            return Ok(None);
        }
        let (start, end) = match self.shape {
            Shape::Fixed(n) => (i * n, (i + 1) * n),
            Shape::Offsets(o) => (o[i] as usize, o[i + 1] as usize),
            Shape::AllNull => return Ok(None),
        };
        if let Some(nulls) = self.item_nulls
            && (start..end).any(|j| nulls.is_null(j))
        {
            return Err(());
        }
        Ok(Some(&self.values[start..end]))
    }
}

/// `metric` of vectors `a` and `b` (each an array and whether it is a constant of one row),
/// for `rows` rows.
fn distances<T>(
    metric: Metric,
    a: &(ArrayRef, bool),
    b: &(ArrayRef, bool),
    rows: usize,
) -> Result<ArrayRef>
where
    T: ArrowPrimitiveType,
    T::Native: Element,
{
    let (mut va, mut vb) = (Vectors::<T>::new(&a.0, a.1)?, Vectors::<T>::new(&b.0, b.1)?);
    // every metric is symmetric: the constant (if any) goes second, its norm computed once
    if va.constant && !vb.constant {
        std::mem::swap(&mut va, &mut vb);
    }
    let constant_norm = match vb.get(0) {
        Ok(Some(v)) if vb.constant => Some(dot(v, v)),
        _ => None,
    };
    let mut out: Vec<Option<T::Native>> = Vec::with_capacity(rows);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: this CPU has AVX2, the only feature `fill_avx2` is compiled for
        unsafe { fill_avx2(metric, &va, &vb, constant_norm, rows, &mut out)? };
        return Ok(Arc::new(PrimitiveArray::<T>::from_iter(out)));
    }
    fill(metric, &va, &vb, constant_norm, rows, &mut out)?;
    Ok(Arc::new(PrimitiveArray::<T>::from_iter(out)))
}

/// [`fill`] compiled for AVX2: eight lanes in one register instead of two. The same
/// operations in the same order per lane (no fused multiply-add), so the same results.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn fill_avx2<T>(
    metric: Metric,
    va: &Vectors<T>,
    vb: &Vectors<T>,
    constant_norm: Option<T::Native>,
    rows: usize,
    out: &mut Vec<Option<T::Native>>,
) -> Result<()>
where
    T: ArrowPrimitiveType,
    T::Native: Element,
{
    fill(metric, va, vb, constant_norm, rows, out)
}

/// The distance of every row pair pushed to `out` (`constant_norm`: ‖b‖² of a constant b).
#[inline(always)]
fn fill<T>(
    metric: Metric,
    va: &Vectors<T>,
    vb: &Vectors<T>,
    constant_norm: Option<T::Native>,
    rows: usize,
    out: &mut Vec<Option<T::Native>>,
) -> Result<()>
where
    T: ArrowPrimitiveType,
    T::Native: Element,
{
    let name = metric.name();
    for i in 0..rows {
        let (x, y) = match (va.get(i), vb.get(i)) {
            (Ok(Some(x)), Ok(Some(y))) => (x, y),
            (Ok(_), Ok(_)) => {
                out.push(None);
                continue;
            }
            _ => return exec_err!("{name}: a vector holds a NULL element (row {})", i + 1),
        };
        if x.len() != y.len() {
            return exec_err!(
                "{name}: vectors of different lengths ({} and {}) at row {}",
                x.len(),
                y.len(),
                i + 1
            );
        }
        out.push(match metric {
            Metric::InnerProduct => Some(dot(x, y)),
            Metric::L2 => Some(squared_l2(x, y).sqrt()),
            Metric::Cosine => cosine(x, y, constant_norm.unwrap_or_else(|| dot(y, y))),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook formulas in f64, one element at a time.
    fn reference(metric: Metric, a: &[f32], b: &[f32]) -> Option<f64> {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        match metric {
            Metric::InnerProduct => Some(dot),
            Metric::L2 => Some(
                a.iter()
                    .zip(b)
                    .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
                    .sum::<f64>()
                    .sqrt(),
            ),
            Metric::Cosine => (na > 0.0 && nb > 0.0).then(|| 1.0 - dot / (na * nb)),
        }
    }

    /// Deterministic pseudo-random vectors.
    fn vector(seed: u64, n: usize) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2000) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_length_matches_the_textbook_formulas() {
        for n in [0, 1, 3, 7, 8, 9, 16, 17, 384, 1000] {
            for seed in 0..5 {
                let (a, b) = (vector(seed, n), vector(seed + 100, n));
                for metric in [Metric::Cosine, Metric::L2, Metric::InnerProduct] {
                    let ours = match metric {
                        Metric::InnerProduct => Some(dot(&a, &b)),
                        Metric::L2 => Some(squared_l2(&a, &b).sqrt()),
                        Metric::Cosine => cosine(&a, &b, dot(&b, &b)),
                    };
                    let want = reference(metric, &a, &b);
                    match (ours, want) {
                        (Some(o), Some(w)) => assert!(
                            (o as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
                            "{metric:?} n={n}: {o} vs {w}"
                        ),
                        (o, w) => assert_eq!(o.is_none(), w.is_none(), "{metric:?} n={n}"),
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_gives_the_same_bits_as_the_baseline() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let rows: Vec<Option<Vec<Option<f32>>>> = (0..50)
            .map(|i| Some(vector(i, 389).into_iter().map(Some).collect()))
            .collect();
        let column: ArrayRef =
            Arc::new(FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(rows, 389));
        let query: ArrayRef = Arc::new(
            FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(
                vec![Some(
                    vector(99, 389).into_iter().map(Some).collect::<Vec<_>>(),
                )],
                389,
            ),
        );
        let (va, vb) = (
            Vectors::<Float32Type>::new(&column, false).unwrap(),
            Vectors::<Float32Type>::new(&query, true).unwrap(),
        );
        for metric in [Metric::Cosine, Metric::L2, Metric::InnerProduct] {
            let (mut base, mut wide) = (Vec::new(), Vec::new());
            fill(metric, &va, &vb, None, 50, &mut base).unwrap();
            // SAFETY: checked above
            unsafe { fill_avx2(metric, &va, &vb, None, 50, &mut wide).unwrap() };
            let bits =
                |v: &[Option<f32>]| v.iter().map(|x| x.map(f32::to_bits)).collect::<Vec<_>>();
            assert_eq!(bits(&base), bits(&wide), "{metric:?}");
        }
    }

    #[test]
    fn cosine_stays_within_zero_and_two_and_is_none_for_zero_vectors() {
        let a = vector(7, 384);
        let minus: Vec<f32> = a.iter().map(|x| -x).collect();
        let same = cosine(&a, &a, dot(&a, &a)).unwrap();
        assert!((0.0..1e-6).contains(&same), "{same}");
        let opposite = cosine(&a, &minus, dot(&minus, &minus)).unwrap();
        assert!(opposite <= 2.0 && opposite > 2.0 - 1e-6, "{opposite}");
        assert_eq!(cosine(&[0.0f32; 4], &[1.0; 4], 4.0), None);
        assert_eq!(cosine(&[1.0f32; 4], &[0.0; 4], 0.0), None);
    }

    #[test]
    fn rows_with_nulls_mismatched_lengths_and_null_items() {
        use datafusion::arrow::array::Float32Array;
        let fixed = |rows: Vec<Option<Vec<Option<f32>>>>| -> ArrayRef {
            Arc::new(FixedSizeListArray::from_iter_primitive::<Float32Type, _, _>(rows, 2))
        };
        let a = fixed(vec![
            Some(vec![Some(3.0), Some(4.0)]),
            None,
            Some(vec![Some(0.0), Some(0.0)]),
        ]);
        let q = fixed(vec![Some(vec![Some(0.0), Some(0.0)])]);
        let out = distances::<Float32Type>(Metric::L2, &(a.clone(), false), &(q.clone(), true), 3)
            .unwrap();
        let out = out.as_any().downcast_ref::<Float32Array>().unwrap();
        assert_eq!(
            out.iter().collect::<Vec<_>>(),
            vec![Some(5.0), None, Some(0.0)]
        );
        let cos =
            distances::<Float32Type>(Metric::Cosine, &(q, true), &(a.clone(), false), 3).unwrap();
        assert_eq!(cos.null_count(), 3);

        let long: ArrayRef = Arc::new(datafusion::arrow::array::ListArray::from_iter_primitive::<
            Float32Type,
            _,
            _,
        >(vec![Some(vec![Some(1.0), Some(2.0), Some(3.0)])]));
        let e =
            distances::<Float32Type>(Metric::InnerProduct, &(a.clone(), false), &(long, true), 3)
                .unwrap_err();
        assert!(
            e.to_string()
                .contains("inner_product: vectors of different lengths (2 and 3) at row 1"),
            "{e}"
        );
        let holed = fixed(vec![Some(vec![Some(1.0), None])]);
        let e =
            distances::<Float32Type>(Metric::Cosine, &(a, false), &(holed, true), 3).unwrap_err();
        assert!(
            e.to_string()
                .contains("cosine_distance: a vector holds a NULL element (row 1)"),
            "{e}"
        );
    }
}
