//! Reading an event from JSON in one pass: only the fields the parser uses are kept, matched
//! by name whatever their case or stray spaces, and everything else is skipped without being
//! built. The same reader works on request bytes and on an already parsed `serde_json::Value`.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::fmt;
use std::marker::PhantomData;

/// The event fields read, in slot order, then `data`, which is read on its own terms.
pub(super) const EVENT_KEYS: [&str; 9] = [
    "id",
    "eventType",
    "type",
    "topic",
    "source",
    "subject",
    "eventTime",
    "time",
    "data",
];
/// How many of [`EVENT_KEYS`] are slots: all but `data`.
pub(super) const EVENT_SLOTS: usize = EVENT_KEYS.len() - 1;
/// The `data` fields read, in slot order.
pub(super) const DATA_KEYS: [&str; 7] = [
    "Id",
    "VaultName",
    "ObjectType",
    "ObjectName",
    "Version",
    "NBF",
    "EXP",
];

/// One event as read from JSON, before it is interpreted; [`RawEvent::into_event`] makes it
/// an [`Event`](super::Event).
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent(pub(super) Shape);

#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a raw event lives only until it is interpreted; a box would cost an allocation each"
)]
pub(super) enum Shape {
    /// The event is not a JSON object: the JSON type found.
    NotAnObject(&'static str),
    Object {
        fields: Slots<EVENT_SLOTS>,
        data: Data,
    },
}

/// The event's `data` member.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "read once per event and taken apart at once; a box would cost an allocation"
)]
pub(super) enum Data {
    Absent,
    Object(Slots<{ DATA_KEYS.len() }>),
    /// Not an object: the JSON type found.
    Other(&'static str),
}

/// A field's value: scalars as sent (strings trimmed), containers only by their JSON type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Null,
    Bool(bool),
    Number(Number),
    Text(String),
    Container(&'static str),
}

/// The values found for a fixed list of keys. An exact key wins over one matched ignoring case
/// and spaces; among exact keys the last wins (as in a JSON object), among loose ones the first.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Slots<const N: usize>([Option<(Scalar, bool)>; N]);

impl<const N: usize> Slots<N> {
    /// Takes the value found for key number `index`.
    pub(super) fn take(&mut self, index: usize) -> Option<Scalar> {
        self.0[index].take().map(|(value, _)| value)
    }

    /// Reads every member of a JSON object, keeping those named in `keys[..N]`. A member named
    /// by a key after those is handed to `extra`, which must read its value.
    fn read<'de, A: MapAccess<'de>>(
        mut map: A,
        keys: &'static [&'static str],
        mut extra: impl FnMut(Found, &mut A) -> Result<(), A::Error>,
    ) -> Result<Self, A::Error> {
        let mut slots: [Option<(Scalar, bool)>; N] = std::array::from_fn(|_| None);
        while let Some(key) = map.next_key_seed(KeySeed(keys))? {
            match key {
                Some(found) if found.index >= N => extra(found, &mut map)?,
                Some(found) if found.exact || slots[found.index].is_none() => {
                    slots[found.index] = Some((map.next_value()?, found.exact));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Self(slots))
    }
}

/// Where a key was found in a key list, and whether it matched exactly.
#[derive(Debug, Clone, Copy)]
struct Found {
    index: usize,
    exact: bool,
}

/// Matches an object key against a key list without allocating.
struct KeySeed(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<Found>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Option<Found>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        if let Some(index) = self.0.iter().position(|k| *k == key) {
            return Ok(Some(Found { index, exact: true }));
        }
        let key = key.trim();
        Ok(self
            .0
            .iter()
            .position(|k| k.eq_ignore_ascii_case(key))
            .map(|index| Found {
                index,
                exact: false,
            }))
    }
}

/// What a JSON value becomes: an object is read member by member, anything else is named by
/// its JSON type unless the target keeps it.
trait FromJson: Sized {
    fn from_object<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
    fn from_other(json_type: &'static str) -> Self;
    fn from_text(_: &str) -> Self {
        Self::from_other("a string")
    }
    fn from_number(_: Number) -> Self {
        Self::from_other("a number")
    }
    fn from_bool(_: bool) -> Self {
        Self::from_other("a boolean")
    }
    fn from_null() -> Self {
        Self::from_other("null")
    }
}

impl FromJson for RawEvent {
    fn from_object<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut data: Option<(Data, bool)> = None;
        let fields = Slots::<EVENT_SLOTS>::read(map, &EVENT_KEYS, |found, map| {
            if found.exact || data.is_none() {
                data = Some((map.next_value_seed(Reader::<Data>::new())?, found.exact));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        })?;
        let data = data.map_or(Data::Absent, |(data, _)| data);
        Ok(RawEvent(Shape::Object { fields, data }))
    }

    fn from_other(json_type: &'static str) -> Self {
        RawEvent(Shape::NotAnObject(json_type))
    }
}

impl FromJson for Data {
    fn from_object<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        Slots::read(map, &DATA_KEYS, |_, map| {
            map.next_value::<IgnoredAny>().map(drop)
        })
        .map(Data::Object)
    }

    fn from_other(json_type: &'static str) -> Self {
        Data::Other(json_type)
    }
}

impl FromJson for Scalar {
    fn from_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Container("an object"))
    }

    fn from_other(json_type: &'static str) -> Self {
        Scalar::Container(json_type)
    }

    fn from_text(text: &str) -> Self {
        Scalar::Text(trimmed(text).to_owned())
    }

    fn from_number(n: Number) -> Self {
        Scalar::Number(n)
    }

    fn from_bool(b: bool) -> Self {
        Scalar::Bool(b)
    }

    fn from_null() -> Self {
        Scalar::Null
    }
}

/// `text` without surrounding whitespace. Values almost never have any: when both ends are
/// printable ASCII, that is all there is to check.
fn trimmed(text: &str) -> &str {
    let printable = |byte: Option<&u8>| byte.is_some_and(u8::is_ascii_graphic);
    let bytes = text.as_bytes();
    if printable(bytes.first()) && printable(bytes.last()) {
        text
    } else {
        text.trim()
    }
}

/// The one visitor behind every [`FromJson`] type.
struct Reader<T>(PhantomData<T>);

impl<T> Reader<T> {
    fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, T: FromJson> DeserializeSeed<'de> for Reader<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: FromJson> Visitor<'de> for Reader<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_object(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::from_other("an array"))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        Ok(T::from_text(text))
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<T, E> {
        Ok(T::from_bool(b))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        Ok(T::from_number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        Ok(T::from_number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        // JSON has no NaN or infinity, so this is always a number.
        Ok(Number::from_f64(n).map_or_else(T::from_null, T::from_number))
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::from_null())
    }
}

impl<'de> Deserialize<'de> for RawEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Reader::new().deserialize(deserializer)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Reader::new().deserialize(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::trimmed;

    #[test]
    fn values_lose_surrounding_whitespace_of_any_kind_and_nothing_else() {
        for (text, expected) in [
            ("db-password", "db-password"),
            ("", ""),
            ("  ", ""),
            (" prod-kv\t", "prod-kv"),
            ("\u{a0}prod-kv\u{2003}", "prod-kv"),
            ("a b", "a b"),
            ("été", "été"),
            ("x\n", "x"),
        ] {
            assert_eq!(trimmed(text), expected, "{text:?}");
        }
    }
}
