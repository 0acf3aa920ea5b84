//! Tables from Python as named columns: a pandas DataFrame, a dict of arrays (numpy, lists,
//! pandas Series, pyarrow arrays) or anything that exports an Arrow stream (pyarrow.Table,
//! polars.DataFrame, …). Numeric columns are read from their buffers, never element by element
//! through Python objects.

use crate::arrow;
use crate::errors::input;
use numpy::{PyArrayDescrMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict, PyString};

/// The values of one column.
#[derive(Debug)]
pub enum Values {
    /// Text (ids); `None` for a missing value.
    Text(Vec<Option<String>>),
    /// Integers (ids, timestamps in seconds).
    Int(Vec<i64>),
    /// Floats (ratings, weights); NaN for a missing value.
    Float(Vec<f64>),
}

impl Values {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::Text(v) => v.len(),
            Values::Int(v) => v.len(),
            Values::Float(v) => v.len(),
        }
    }
}

/// A named column.
#[derive(Debug)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its values.
    pub values: Values,
}

/// Whether `obj` is a table this module reads (rather than a path or a list of sequences).
pub fn is_table(obj: &Bound<'_, PyAny>) -> bool {
    obj.is_instance_of::<PyDict>() || is_pandas_frame(obj) || obj.hasattr("__arrow_c_stream__").unwrap_or(false)
}

fn is_pandas_frame(obj: &Bound<'_, PyAny>) -> bool {
    let module = obj.get_type().module().map(|m| m.to_string()).unwrap_or_default();
    module.starts_with("pandas") && obj.hasattr("columns").unwrap_or(false)
}

/// The columns of a table (a pandas DataFrame, a dict of arrays, or an Arrow stream) that
/// `wanted` picks from the column names; the others are not read. Returns one slot per name,
/// `Some` for the columns read.
pub fn read(
    obj: &Bound<'_, PyAny>,
    wanted: &mut dyn FnMut(&[String]) -> PyResult<Vec<usize>>,
) -> PyResult<Vec<Option<Column>>> {
    let py = obj.py();
    let columns = if let Ok(dict) = obj.cast::<PyDict>() {
        let items: Vec<(Bound<PyAny>, Bound<PyAny>)> = dict.iter().collect();
        let names = items.iter().map(|(k, _)| name_of(k)).collect::<PyResult<Vec<_>>>()?;
        let picked = wanted(&names)?;
        let mut out: Vec<Option<Column>> = names.iter().map(|_| None).collect();
        for i in picked {
            out[i] = Some(Column { values: array_values(&names[i], &items[i].1)?, name: names[i].clone() });
        }
        out
    } else if is_pandas_frame(obj) {
        let keys: Vec<Bound<PyAny>> = obj.getattr("columns")?.try_iter()?.collect::<PyResult<_>>()?;
        let names = keys.iter().map(name_of).collect::<PyResult<Vec<_>>>()?;
        let picked = wanted(&names)?;
        let mut out: Vec<Option<Column>> = names.iter().map(|_| None).collect();
        for i in picked {
            let array = obj.get_item(&keys[i])?.call_method0("to_numpy")?;
            out[i] = Some(Column { values: array_values(&names[i], &array)?, name: names[i].clone() });
        }
        out
    } else if obj.hasattr("__arrow_c_stream__")? {
        arrow::read(obj, wanted)?
    } else {
        return Err(input(
            py,
            format!(
                "expected a path, a pandas.DataFrame, a pyarrow.Table or a dict of arrays, got {}",
                obj.get_type().name()?
            ),
        ));
    };
    let read: Vec<&Column> = columns.iter().flatten().collect();
    if let Some(first) = read.first()
        && let Some(c) = read.iter().find(|c| c.values.len() != first.values.len())
    {
        return Err(input(
            py,
            format!(
                "columns of different lengths: '{}' has {} values, '{}' has {}",
                first.name,
                first.values.len(),
                c.name,
                c.values.len()
            ),
        ));
    }
    Ok(columns)
}

fn name_of(k: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(match k.cast::<PyString>() {
        Ok(s) => s.to_cow()?.into_owned(),
        Err(_) => k.str()?.to_cow()?.into_owned(),
    })
}

/// The values of an array-like: a numpy array, or anything `numpy.asarray` takes.
pub fn array_values(name: &str, obj: &Bound<'_, PyAny>) -> PyResult<Values> {
    let py = obj.py();
    let np = py.import("numpy")?;
    let array = match obj.cast::<PyUntypedArray>() {
        Ok(a) => a.clone(),
        Err(_) => np.call_method1("asarray", (obj,))?.cast_into::<PyUntypedArray>()?,
    };
    if array.ndim() != 1 {
        return Err(input(py, format!("column '{name}': expected one dimension, found shape {:?}", array.shape())));
    }
    let kind = array.dtype().kind();
    Ok(match kind {
        b'i' | b'u' | b'b' => Values::Int(contiguous::<i64>(&np, array.as_any(), "int64")?),
        b'f' => Values::Float(contiguous::<f64>(&np, array.as_any(), "float64")?),
        // datetimes: seconds since the epoch
        b'M' => {
            let seconds = array.call_method1("astype", ("datetime64[s]",))?;
            Values::Int(contiguous::<i64>(&np, &seconds, "int64")?)
        }
        b'U' | b'S' | b'O' => Values::Text(texts(name, &array.call_method0("tolist")?)?),
        other => {
            return Err(input(
                py,
                format!("column '{name}': unsupported dtype {} (kind '{}')", array.dtype(), other as char),
            ));
        }
    })
}

/// The values of a numpy array as `T` (`dtype` its numpy name): read in place when the array
/// already is contiguous `T`s, else converted by numpy first.
fn contiguous<T: numpy::Element + Copy>(
    np: &Bound<'_, PyModule>,
    array: &Bound<'_, PyAny>,
    dtype: &str,
) -> PyResult<Vec<T>> {
    let py = np.py();
    let a = np.call_method("ascontiguousarray", (array,), Some(&[("dtype", dtype)].into_py_dict(py)?))?;
    let a: PyReadonlyArray1<T> = a.extract()?;
    Ok(a.as_slice().map_err(|e| input(py, e.to_string()))?.to_vec())
}

/// The texts of a list: strings as they are, integers written out, `None` and NaN missing;
/// anything else is an error naming the column and the row.
fn texts(name: &str, list: &Bound<'_, PyAny>) -> PyResult<Vec<Option<String>>> {
    let py = list.py();
    let mut out = Vec::new();
    for (i, v) in list.try_iter()?.enumerate() {
        let v = v?;
        out.push(if let Ok(s) = v.cast::<PyString>() {
            Some(s.to_cow()?.into_owned())
        } else if v.is_none() || ["NAType", "NaTType"].contains(&v.get_type().name()?.to_cow()?.as_ref()) {
            None
        } else if let Ok(n) = v.extract::<i64>() {
            Some(n.to_string())
        } else if let Ok(f) = v.extract::<f64>() {
            if f.is_nan() {
                None
            } else if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Some((f as i64).to_string())
            } else {
                Some(f.to_string())
            }
        } else if let Ok(b) = v.extract::<Vec<u8>>() {
            Some(String::from_utf8_lossy(&b).into_owned())
        } else {
            return Err(input(
                py,
                format!("column '{name}' row {}: expected a string or a number, found {}", i + 1, v.get_type().name()?),
            ));
        });
    }
    Ok(out)
}
