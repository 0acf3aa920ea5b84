//! Keyword arguments as the library's [`TrainOptions`]: the names of `towers train`'s options
//! (with `_` for `-`), the same values (`"adagrad"`, `"batch-norm"` or `"batch_norm"`, `[256, 64]`).

use crate::errors::config;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;
use towers::TrainOptions;

/// The options named by `kwargs` (unknown names and bad values are `ConfigError`s).
pub fn train_options(py: Python<'_>, kwargs: &Bound<'_, PyDict>) -> PyResult<TrainOptions> {
    if let Some((k, _)) = kwargs.iter().find(|(_, v)| v.is_instance_of::<PyDict>()) {
        return Err(config(py, format!("option '{k}': a training option is a value or a list, not a dict")));
    }
    from_kwargs(py, Some(kwargs))
}

/// Keyword arguments (those not `None`) as one of the library's option types, read by its own
/// rules (`Request`, `EvalOptions`, `TrainOptions`): unknown names and bad values are
/// `ConfigError`s.
pub fn from_kwargs<T: serde::de::DeserializeOwned>(py: Python<'_>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<T> {
    let mut object = serde_json::Map::new();
    for (k, v) in kwargs.into_iter().flat_map(|d| d.iter()) {
        let key: String = k.extract()?;
        if v.is_none() {
            continue;
        }
        object.insert(key.clone(), json(&v).map_err(|m| config(py, format!("option '{key}': {m}")))?);
    }
    serde_json::from_value(Value::Object(object))
        .map_err(|e| config(py, e.to_string().replace("unknown field", "unknown option")))
}

/// A Python value as JSON: booleans, integers, floats, strings, paths and lists of them.
fn json(v: &Bound<'_, PyAny>) -> Result<Value, String> {
    if v.is_instance_of::<PyBool>() {
        return v.extract::<bool>().map(Value::Bool).map_err(|e| e.to_string());
    }
    if v.is_instance_of::<PyInt>() || v.hasattr("__index__").unwrap_or(false) && !v.is_instance_of::<PyFloat>() {
        if let Ok(i) = v.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = v.extract::<u64>() {
            return Ok(Value::from(u));
        }
    }
    if (v.is_instance_of::<PyFloat>() || v.hasattr("__float__").unwrap_or(false) && !v.is_instance_of::<PyString>())
        && let Ok(f) = v.extract::<f64>()
    {
        return serde_json::Number::from_f64(f).map(Value::Number).ok_or_else(|| format!("{f} is not a number"));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return s.to_cow().map(|s| Value::String(s.into_owned())).map_err(|e| e.to_string());
    }
    if v.hasattr("__fspath__").unwrap_or(false) {
        let path = v.py().import("os").and_then(|os| os.call_method1("fspath", (v,))).map_err(|e| e.to_string())?;
        return json(&path);
    }
    if v.is_instance_of::<PyList>() || v.is_instance_of::<PyTuple>() {
        let items = v.try_iter().map_err(|e| e.to_string())?;
        return items
            .map(|x| x.map_err(|e| e.to_string()).and_then(|x| json(&x)))
            .collect::<Result<_, _>>()
            .map(Value::Array);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        let mut object = serde_json::Map::new();
        for (k, x) in d.iter() {
            let key: String = k.extract().map_err(|_| "dict keys must be strings".to_string())?;
            object.insert(key, json(&x)?);
        }
        return Ok(Value::Object(object));
    }
    Err(format!("unsupported value of type {}", v.get_type().name().map(|n| n.to_string()).unwrap_or_default()))
}

/// A value of one of the library's enums from its name (`"sessions"`, `"retailrocket-events"`).
pub fn enum_value<T: serde::de::DeserializeOwned>(py: Python<'_>, what: &str, v: &Bound<'_, PyAny>) -> PyResult<T> {
    let name: String = v.extract()?;
    serde_json::from_value(Value::String(name)).map_err(|e| config(py, format!("{what}: {e}")))
}
