//! Tables through the Arrow C stream interface (`__arrow_c_stream__`: pyarrow.Table,
//! polars.DataFrame, DuckDB results, …): the batches are read from Arrow's buffers in place.

use crate::columns::{Column, Values};
use crate::errors::input;
use arrow_array::cast::AsArray;
use arrow_array::ffi_stream::{ArrowArrayStreamReader, FFI_ArrowArrayStream};
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type,
    UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray, RecordBatchReader};
use arrow_schema::{DataType, TimeUnit};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

/// The columns `wanted` picks, read from the object's Arrow stream.
pub fn read(
    obj: &Bound<'_, PyAny>,
    wanted: &mut dyn FnMut(&[String]) -> PyResult<Vec<usize>>,
) -> PyResult<Vec<Option<Column>>> {
    let py = obj.py();
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>()?;
    let pointer = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
    // SAFETY: a capsule named `arrow_array_stream` holds an `ArrowArrayStream` (the Arrow
    // PyCapsule interface); `from_raw` moves it out and leaves a released stream behind, which
    // the capsule's destructor then ignores.
    let stream = unsafe { FFI_ArrowArrayStream::from_raw(pointer.as_ptr().cast()) };
    let reader = ArrowArrayStreamReader::try_new(stream).map_err(|e| input(py, format!("Arrow stream: {e}")))?;
    let schema = reader.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let picked = wanted(&names)?;
    let mut out: Vec<Option<Column>> = names.iter().map(|_| None).collect();
    for &i in &picked {
        let values = match schema.field(i).data_type() {
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Values::Float(Vec::new()),
            t if text_type(t) => Values::Text(Vec::new()),
            _ => Values::Int(Vec::new()),
        };
        out[i] = Some(Column { name: names[i].clone(), values });
    }
    for batch in reader {
        let batch = batch.map_err(|e| input(py, format!("Arrow stream: {e}")))?;
        for &i in &picked {
            if let Some(column) = out[i].as_mut() {
                append(&mut column.values, batch.column(i).as_ref())
                    .map_err(|m| input(py, format!("column '{}': {m}", names[i])))?;
            }
        }
    }
    Ok(out)
}

fn text_type(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => text_type(v),
        _ => false,
    }
}

/// Appends an array's values to a column of the type its schema gave.
fn append(values: &mut Values, array: &dyn Array) -> Result<(), String> {
    match values {
        Values::Text(out) => out.extend(texts(array)?),
        Values::Float(out) => match array.data_type() {
            DataType::Float32 => out.extend(floats(array.as_primitive::<Float32Type>())),
            DataType::Float64 => out.extend(floats(array.as_primitive::<Float64Type>())),
            DataType::Float16 => out.extend(
                array.as_primitive::<arrow_array::types::Float16Type>().iter().map(|v| v.map_or(f64::NAN, f64::from)),
            ),
            t => return Err(format!("expected floats, found Arrow type {t}")),
        },
        Values::Int(out) => {
            if array.null_count() > 0 {
                let first = (0..array.len()).find(|&r| array.is_null(r)).unwrap_or(0);
                return Err(format!("a missing value (null) in a batch, at its row {}", first + 1));
            }
            match array.data_type() {
                DataType::Boolean => out.extend(array.as_boolean().values().iter().map(i64::from)),
                DataType::Int8 => ints::<Int8Type>(out, array)?,
                DataType::Int16 => ints::<Int16Type>(out, array)?,
                DataType::Int32 => ints::<Int32Type>(out, array)?,
                DataType::Int64 => ints::<Int64Type>(out, array)?,
                DataType::UInt8 => ints::<UInt8Type>(out, array)?,
                DataType::UInt16 => ints::<UInt16Type>(out, array)?,
                DataType::UInt32 => ints::<UInt32Type>(out, array)?,
                DataType::UInt64 => ints::<UInt64Type>(out, array)?,
                DataType::Timestamp(unit, _) => {
                    let (values, per_s): (&[i64], i64) = match unit {
                        TimeUnit::Second => (array.as_primitive::<TimestampSecondType>().values(), 1),
                        TimeUnit::Millisecond => (array.as_primitive::<TimestampMillisecondType>().values(), 1_000),
                        TimeUnit::Microsecond => (array.as_primitive::<TimestampMicrosecondType>().values(), 1_000_000),
                        TimeUnit::Nanosecond => {
                            (array.as_primitive::<TimestampNanosecondType>().values(), 1_000_000_000)
                        }
                    };
                    out.extend(values.iter().map(|v| v.div_euclid(per_s)));
                }
                t => return Err(format!("unsupported Arrow type {t} (expected text, integers, floats or timestamps)")),
            }
        }
    }
    Ok(())
}

fn floats<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>) -> impl Iterator<Item = f64> + '_
where
    T::Native: Into<f64>,
{
    array.iter().map(|v| v.map_or(f64::NAN, Into::into))
}

fn ints<T: ArrowPrimitiveType>(out: &mut Vec<i64>, array: &dyn Array) -> Result<(), String>
where
    T::Native: TryInto<i64> + std::fmt::Display,
{
    for v in array.as_primitive::<T>().values().iter() {
        out.push((*v).try_into().map_err(|_| format!("{v} does not fit a 64-bit integer"))?);
    }
    Ok(())
}

/// The texts of a string (or dictionary-of-strings) array; nulls are `None`.
fn texts(array: &dyn Array) -> Result<Vec<Option<String>>, String> {
    let own = |v: Option<&str>| v.map(str::to_string);
    Ok(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().iter().map(own).collect(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().map(own).collect(),
        DataType::Utf8View => array.as_string_view().iter().map(own).collect(),
        DataType::Dictionary(_, _) => {
            let dict = array.as_any_dictionary();
            let values = texts(dict.values().as_ref())?;
            let keys = dict.normalized_keys();
            let value = |r: usize| keys.get(r).and_then(|&k| values.get(k)).cloned().flatten();
            (0..array.len()).map(|r| if array.is_null(r) { None } else { value(r) }).collect()
        }
        t => return Err(format!("expected text, found Arrow type {t}")),
    })
}
