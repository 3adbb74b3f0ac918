//! [`AttributeValue`]: which Rust values can become typed OpenTelemetry
//! attribute values (the `attrs(...)` argument of `#[traced]`).

use std::borrow::Cow;

use opentelemetry::{Array, StringValue, Value};

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
        Some(Value::F64(f64::from(*self)))
    }
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
        Array::F64(items.iter().map(|v| f64::from(*v)).collect())
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
