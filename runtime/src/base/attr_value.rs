//! [`AttributeValue`]: which Rust values can become typed OpenTelemetry
//! attribute values (the `attrs(...)` argument of `#[traced]`).

use std::borrow::Cow;

use opentelemetry::{Array, KeyValue, StringValue, Value};

/// A value that can be recorded as a typed span attribute: strings, integers,
/// floats, booleans, slices and vectors of those (kept as arrays), and
/// `Option`s of those (`None` records nothing).
///
/// For any other type, record a string: `attrs(kind = format!("{x:?}"))`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be recorded as an observra attribute value",
    label = "not a string, integer, float, bool, or a slice/Vec/Option of those",
    note = "convert it first, for example with `.to_string()` or `format!(\"{{:?}}\", value)`"
)]
pub trait AttributeValue {
    /// The OpenTelemetry value, or `None` to record nothing.
    fn to_attribute_value(&self) -> Option<Value>;
}

impl<T: AttributeValue + ?Sized> AttributeValue for &T {
    fn to_attribute_value(&self) -> Option<Value> {
        (**self).to_attribute_value()
    }
}
impl<T: AttributeValue> AttributeValue for Option<T> {
    fn to_attribute_value(&self) -> Option<Value> {
        self.as_ref().and_then(AttributeValue::to_attribute_value)
    }
}
impl AttributeValue for str {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(self.to_string().into()))
    }
}
impl AttributeValue for String {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(self.clone().into()))
    }
}
impl AttributeValue for Cow<'static, str> {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::String(StringValue::from(self.clone())))
    }
}
impl AttributeValue for bool {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::Bool(*self))
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl AttributeValue for $t {
            fn to_attribute_value(&self) -> Option<Value> {
                Some(match i64::try_from(*self) {
                    Ok(v) => Value::I64(v),
                    // Larger than i64::MAX: keep every digit as a string.
                    Err(_) => Value::String(self.to_string().into()),
                })
            }
        }
    )*};
}
int_value!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, i128, u128);
impl AttributeValue for f64 {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::F64(*self))
    }
}
impl AttributeValue for f32 {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::F64(widen_f32(*self)))
    }
}

/// An `f32` as the `f64` of its shortest decimal form, so `0.2f32` is
/// exported as `0.2`, not `0.20000000298023224` (what `f64::from` gives:
/// the exact binary value, which no user wrote).
pub fn widen_f32(v: f32) -> f64 {
    use std::io::Write;
    if !v.is_finite() {
        return f64::from(v);
    }
    // Display prints the shortest decimal that reads back as the same f32.
    let mut buf = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    if write!(cursor, "{v}").is_err() {
        return f64::from(v);
    }
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len]).ok().and_then(|s| s.parse().ok()).unwrap_or(f64::from(v))
}

/// Element types an attribute array may hold: strings, integers, floats, booleans.
pub trait ArrayElement: Sized {
    #[doc(hidden)]
    fn collect_array(items: &[Self]) -> Array;
}
macro_rules! string_element {
    ($($t:ty),*) => {$(
        impl ArrayElement for $t {
            fn collect_array(items: &[Self]) -> Array {
                Array::String(items.iter().map(|s| StringValue::from(AsRef::<str>::as_ref(s).to_string())).collect())
            }
        }
    )*};
}
string_element!(String, &str, &String, Cow<'static, str>);
macro_rules! int_element {
    ($($t:ty),*) => {$(
        impl ArrayElement for $t {
            fn collect_array(items: &[Self]) -> Array {
                Array::I64(items.iter().map(|v| i64::from(*v)).collect())
            }
        }
    )*};
}
int_element!(i8, i16, i32, i64, u8, u16, u32);
impl ArrayElement for f64 {
    fn collect_array(items: &[Self]) -> Array {
        Array::F64(items.to_vec())
    }
}
impl ArrayElement for f32 {
    fn collect_array(items: &[Self]) -> Array {
        Array::F64(items.iter().map(|v| widen_f32(*v)).collect())
    }
}
impl ArrayElement for bool {
    fn collect_array(items: &[Self]) -> Array {
        Array::Bool(items.to_vec())
    }
}
impl<T: ArrayElement> AttributeValue for [T] {
    fn to_attribute_value(&self) -> Option<Value> {
        Some(Value::Array(T::collect_array(self)))
    }
}
impl<T: ArrayElement> AttributeValue for Vec<T> {
    fn to_attribute_value(&self) -> Option<Value> {
        self.as_slice().to_attribute_value()
    }
}
impl<T: ArrayElement, const N: usize> AttributeValue for [T; N] {
    fn to_attribute_value(&self) -> Option<Value> {
        self.as_slice().to_attribute_value()
    }
}

/// About how many bytes `v` takes as exported (and held).
fn value_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.as_str().len(),
        Value::Array(Array::String(items)) => items.iter().map(|s| s.as_str().len() + 2).sum(),
        Value::Array(Array::I64(a)) => a.len() * 10,
        Value::Array(Array::F64(a)) => a.len() * 9,
        Value::Array(Array::Bool(a)) => a.len() * 2,
        _ => 10,
    }
}

/// About how many bytes `attrs` take as exported (and held).
pub(crate) fn attributes_size(attrs: &[KeyValue]) -> usize {
    attrs.iter().map(|kv| kv.key.as_str().len() + value_size(&kv.value) + 8).sum()
}

#[cfg(test)]
mod tests {
    use super::widen_f32;

    #[test]
    fn f32_values_keep_their_shortest_decimal_form() {
        assert_eq!(widen_f32(0.2), 0.2);
        assert_eq!(widen_f32(0.7), 0.7);
        assert_eq!(widen_f32(1.0), 1.0);
        assert_eq!(widen_f32(-3.4e38), -3.4e38);
        assert_eq!(widen_f32(1e-45), 1e-45);
        assert!(widen_f32(f32::NAN).is_nan());
        assert_eq!(widen_f32(f32::INFINITY), f64::INFINITY);
        // The exact binary value is not what a user wrote.
        assert_ne!(f64::from(0.2f32), 0.2);
    }
}
