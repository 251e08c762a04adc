//! Reading an event from JSON in one pass: only the fields the parser uses are kept, matched
//! by name whatever their case or stray spaces, and everything else is skipped without being
//! built. The same reader works on request bytes and on an already parsed `serde_json::Value`.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Number;
use std::fmt;
use std::marker::PhantomData;

/// Declares the fields read from one JSON object: an enum whose every variant names its key, so
/// that a field and its key cannot fall out of step.
macro_rules! fields {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $key:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $crate::event::Field for $name {
            const ALL: &'static [Self] = &[$(Self::$variant,)*];

            fn key(self) -> &'static str {
                match self {
                    $(Self::$variant => $key,)*
                }
            }

            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

pub(crate) use fields;

/// A field of a JSON object, matched by its key.
pub(crate) trait Field: Copy + PartialEq + 'static {
    /// Every field, in declaration order.
    const ALL: &'static [Self];
    /// The key as Key Vault sends it.
    fn key(self) -> &'static str;
    /// Its position in [`Field::ALL`].
    fn index(self) -> usize;
}

fields! {
    /// The event members read (either schema).
    EventField {
        Id = "id",
        EventType = "eventType",
        Type = "type",
        Topic = "topic",
        Source = "source",
        Subject = "subject",
        EventTime = "eventTime",
        Time = "time",
        /// Read on its own terms, into [`Data`].
        Data = "data",
    }
}

fields! {
    /// The members of `data` read.
    DataField {
        Id = "Id",
        VaultName = "VaultName",
        ObjectType = "ObjectType",
        ObjectName = "ObjectName",
        Version = "Version",
        Nbf = "NBF",
        Exp = "EXP",
        /// A resource event's operation (`Microsoft.Authorization/roleAssignments/write`).
        OperationName = "operationName",
        /// A resource event's resource id.
        ResourceUri = "resourceUri",
        TenantId = "tenantId",
        CorrelationId = "correlationId",
        /// Read on its own terms, into [`Members::claims`].
        Claims = "claims",
        /// Read on its own terms, into [`Members::request`].
        HttpRequest = "httpRequest",
    }
}

fields! {
    /// The token claims a resource event carries of its caller.
    ClaimField {
        Name = "name",
        Upn = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
        UniqueName = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        AppId = "appid",
        ObjectId = "http://schemas.microsoft.com/identity/claims/objectidentifier",
        IpAddress = "ipaddr",
    }
}

fields! {
    /// What a resource event says of the request that made it.
    RequestField {
        ClientIp = "clientIpAddress",
    }
}

/// One event as read from JSON, before it is interpreted; [`RawEvent::into_event`] makes it
/// an [`Event`](super::Event).
#[derive(Debug, Clone, PartialEq)]
pub enum RawEvent {
    /// The event is not a JSON object: the JSON type found.
    NotAnObject(&'static str),
    /// An object: the fields read, and its `data`.
    Object {
        /// The event members read.
        fields: FieldValues<EventField>,
        /// Its `data` member.
        data: Data,
    },
}

/// The event's `data` member.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    Absent,
    Object(Members),
    /// Not an object: the JSON type found.
    Other(&'static str),
}

/// What is read of an object `data`: its scalars, and a resource event's two nested objects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Members {
    pub(crate) fields: FieldValues<DataField>,
    /// `claims`, when it is an object.
    pub(crate) claims: Option<FieldValues<ClaimField>>,
    /// `httpRequest`, when it is an object.
    pub(crate) request: Option<FieldValues<RequestField>>,
}

/// A field's value: scalars as sent (strings trimmed), containers only by their JSON type.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar {
    Null,
    Bool(bool),
    Number(Number),
    Text(String),
    ObjectOrArray(&'static str),
}

/// The values found for the fields `F`. An exact key wins over one matched ignoring case and
/// spaces; among exact keys the last wins (as in a JSON object), among loose ones the first.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldValues<F> {
    values: Vec<Option<(Scalar, bool)>>,
    fields: PhantomData<F>,
}

impl<F: Field> Default for FieldValues<F> {
    /// No field found.
    fn default() -> Self {
        Self {
            values: vec![None; F::ALL.len()],
            fields: PhantomData,
        }
    }
}

impl<F: Field> FieldValues<F> {
    /// Takes the value found for `field`.
    pub(super) fn take(&mut self, field: F) -> Option<Scalar> {
        self.values[field.index()].take().map(|(value, _)| value)
    }

    /// Reads every member of a JSON object, keeping the scalar fields of `F`. A member named by
    /// one of `nested` is handed to `extra`, which must read its value.
    fn read<'de, A: MapAccess<'de>>(
        mut map: A,
        nested: &[F],
        mut extra: impl FnMut(Found<F>, &mut A) -> Result<(), A::Error>,
    ) -> Result<Self, A::Error> {
        let mut values: Vec<Option<(Scalar, bool)>> = vec![None; F::ALL.len()];
        while let Some(key) = map.next_key_seed(KeySeed::<F>(PhantomData))? {
            match key {
                Some(found) if nested.contains(&found.field) => extra(found, &mut map)?,
                Some(found) if found.exact || values[found.field.index()].is_none() => {
                    values[found.field.index()] = Some((map.next_value()?, found.exact));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Self {
            values,
            fields: PhantomData,
        })
    }
}

/// Which field a key named, and whether it matched exactly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found<F> {
    field: F,
    exact: bool,
}

impl<F> Found<F> {
    /// Whether the key was spelt exactly as declared.
    pub(crate) fn exact(&self) -> bool {
        self.exact
    }
}

/// Matches an object key against the fields `F` without allocating: exactly, else ignoring
/// ASCII case and surrounding spaces.
pub(crate) struct KeySeed<F>(pub(crate) PhantomData<F>);

impl<'de, F: Field> DeserializeSeed<'de> for KeySeed<F> {
    type Value = Option<Found<F>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<F: Field> Visitor<'_> for KeySeed<F> {
    type Value = Option<Found<F>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        let find = |exact: bool| {
            let trimmed = key.trim();
            F::ALL.iter().find_map(|field| {
                let matched = if exact {
                    field.key() == key
                } else {
                    field.key().eq_ignore_ascii_case(trimmed)
                };
                matched.then_some(Found {
                    field: *field,
                    exact,
                })
            })
        };
        Ok(find(true).or_else(|| find(false)))
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
        let fields = FieldValues::read(map, &[EventField::Data], |found, map| {
            if found.exact || data.is_none() {
                data = Some((map.next_value_seed(Reader::<Data>::new())?, found.exact));
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            Ok(())
        })?;
        let data = data.map_or(Data::Absent, |(data, _)| data);
        Ok(RawEvent::Object { fields, data })
    }

    fn from_other(json_type: &'static str) -> Self {
        RawEvent::NotAnObject(json_type)
    }
}

impl FromJson for Data {
    fn from_object<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let (mut claims, mut request) = (None, None);
        let nested = [DataField::Claims, DataField::HttpRequest];
        let fields = FieldValues::read(map, &nested, |found, map| {
            match found.field {
                DataField::Claims => claims = map.next_value_seed(Reader::<Nested<_>>::new())?.0,
                _ => request = map.next_value_seed(Reader::<Nested<_>>::new())?.0,
            }
            Ok(())
        })?;
        Ok(Data::Object(Members {
            fields,
            claims,
            request,
        }))
    }

    fn from_other(json_type: &'static str) -> Self {
        Data::Other(json_type)
    }
}

/// A nested object's scalar fields `F`; anything but an object reads as `None`.
struct Nested<F>(Option<FieldValues<F>>);

impl<F: Field> FromJson for Nested<F> {
    fn from_object<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        FieldValues::read(map, &[], |_, map| map.next_value::<IgnoredAny>().map(drop))
            .map(|fields| Nested(Some(fields)))
    }

    fn from_other(_: &'static str) -> Self {
        Nested(None)
    }
}

impl FromJson for Scalar {
    fn from_object<'de, A: MapAccess<'de>>(mut map: A) -> Result<Self, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::ObjectOrArray("an object"))
    }

    fn from_other(json_type: &'static str) -> Self {
        Scalar::ObjectOrArray(json_type)
    }

    fn from_text(text: &str) -> Self {
        Scalar::Text(text.trim().to_owned())
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
