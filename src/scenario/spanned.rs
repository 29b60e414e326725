//! A value of the scenario file with the bytes it was written at, so that an error can point at
//! its line and column. TOML reads it as `toml::Spanned` does; its JSON Schema is the value's own,
//! since the span is where the value stands, not something the user writes.

use std::borrow::Cow;
use std::ops::Range;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Spanned<T>(toml::Spanned<T>);

impl<T> Spanned<T> {
    /// A value at `span`; `0..0` for one the file did not write (a default, an override).
    pub fn new(span: Range<usize>, value: T) -> Spanned<T> {
        Spanned(toml::Spanned::new(span, value))
    }

    /// The byte range of the value in the file.
    pub fn span(&self) -> Range<usize> {
        self.0.span()
    }

    pub fn get_ref(&self) -> &T {
        self.0.get_ref()
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }

    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<T: JsonSchema> JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        generator.subschema_for::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        name: Spanned<String>,
    }

    #[test]
    fn a_value_keeps_where_it_was_written() {
        let file: File = toml::from_str("name = \"echo\"\n").unwrap();
        assert_eq!(file.name.get_ref(), "echo");
        assert_eq!(file.name.span(), 7..13);
    }

    #[test]
    fn its_schema_is_the_values_own() {
        let schema = schemars::schema_for!(Spanned<u8>);
        let plain = schemars::schema_for!(u8);
        assert_eq!(schema, plain);
    }
}
