//! Cache keys and the canonical encoding ops are keyed with.
//!
//! A [`CacheKey`] is the BLAKE3 hash (32 bytes) of a byte string written by a [`KeyEncoder`]: a
//! versioned header, the op's kind, then the op's semantic fields in the order the caller writes
//! them. The encoding is self-delimiting (every value carries a type tag, and every
//! variable-length value a length or count), so two different field sequences never produce the
//! same bytes.
//!
//! # Encoding, version 1 (byte level)
//!
//! All integers are big-endian. `LEN` is a u64 (8 bytes).
//!
//! ```text
//! key      = BLAKE3( header field* )
//! header   = STR("nodekit-cache-key/v1") STR(kind)          kind: "source", "exec", "file", ...
//! field    = 0x3D '='  LEN name-bytes  value                a named field, in caller order
//! value    = 0x75 'u'  u64 (8 bytes)
//!          | 0x69 'i'  i64 (8 bytes, two's complement)
//!          | 0x62 'b'  0x00 | 0x01
//!          | STR                                             0x73 's' LEN utf-8 bytes
//!          | 0x79 'y'  LEN bytes
//!          | 0x6B 'k'  32 bytes                              a cache key (an input's key)
//!          | 0x6E 'n'                                        an absent optional value
//!          | 0x6C 'l'  LEN(count) value*                     a list, order kept
//!          | 0x6D 'm'  LEN(count) (STR value)*               a map; entries sorted by key bytes,
//!                                                            equal keys by their value's bytes
//!          | 0x7B '{'  field* 0x7D '}'                       a struct (nested fields)
//! ```
//!
//! An output of an op has its own key, [`CacheKey::for_output`]:
//! `BLAKE3( STR("nodekit-cache-output/v1") 0x6B op-key 0x75 u64(index) )`.
//!
//! # Conventions for the daemon's mapping of LLB ops
//!
//! - Write only semantic fields: never names, descriptions, progress groups, or an ExecOp's
//!   ProxyEnv; never a cache mount's contents (its id and sharing mode are semantic).
//! - Omit a field whose value is its default (empty, zero, false, absent): a field added in a
//!   later release then leaves every existing key unchanged.
//! - Keep one field order per op kind; a change of order changes every key of that kind.
//! - End with [`Fields::platform`] and [`Fields::inputs`] (the ordered keys of the inputs' outputs).
//! - A `local://` source writes the [`crate::tree`] digest of the selected files; a
//!   `docker-image://` source writes the resolved manifest digest, not the tag.
//!
//! Golden vectors in this module's tests pin the encoding: changing it must be deliberate, and
//! comes with a new version string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// The version tag every key's encoding starts with.
pub const KEY_VERSION: &str = "nodekit-cache-key/v1";
/// The version tag of an output key's encoding.
pub const OUTPUT_VERSION: &str = "nodekit-cache-output/v1";

const T_FIELD: u8 = b'=';
const T_U64: u8 = b'u';
const T_I64: u8 = b'i';
const T_BOOL: u8 = b'b';
const T_STR: u8 = b's';
const T_BYTES: u8 = b'y';
const T_KEY: u8 = b'k';
const T_NONE: u8 = b'n';
const T_LIST: u8 = b'l';
const T_MAP: u8 = b'm';
const T_STRUCT: u8 = b'{';
const T_END: u8 = b'}';

/// A content-addressed cache key: 32 bytes of BLAKE3. Displays and parses as 64 hex digits.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key with these bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> CacheKey {
        CacheKey(bytes)
    }

    /// The key's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key of output `index` of the op keyed by `self`.
    pub fn for_output(&self, index: u32) -> CacheKey {
        let mut buf = Vec::with_capacity(64);
        put_str(&mut buf, OUTPUT_VERSION);
        buf.push(T_KEY);
        buf.extend_from_slice(&self.0);
        buf.push(T_U64);
        buf.extend_from_slice(&u64::from(index).to_be_bytes());
        CacheKey(*blake3::hash(&buf).as_bytes())
    }

    /// The 64 lowercase hex digits of the key.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.to_hex())
    }
}

impl FromStr for CacheKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 {
            return Err(Error::Key(s.to_string()));
        }
        blake3::Hash::from_hex(s)
            .map(|h| CacheKey(*h.as_bytes()))
            .map_err(|_| Error::Key(s.to_string()))
    }
}

impl Serialize for CacheKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for CacheKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            s.parse().map_err(serde::de::Error::custom)
        } else {
            d.deserialize_bytes(KeyBytes)
        }
    }
}

struct KeyBytes;

impl serde::de::Visitor<'_> for KeyBytes {
    type Value = CacheKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("32 bytes")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<CacheKey, E> {
        <[u8; 32]>::try_from(v)
            .map(CacheKey)
            .map_err(|_| E::invalid_length(v.len(), &self))
    }
}

/// Writes an op's canonical encoding and hashes it into a [`CacheKey`].
///
/// ```ignore
/// let mut e = KeyEncoder::new("exec");
/// e.str_list("args", &["/bin/sh", "-c", "make"]).str("cwd", "/src");
/// e.platform("linux", "amd64", "").inputs(&[base]);
/// let op = e.finish();
/// let rootfs = op.for_output(0);
/// ```
#[derive(Clone, Debug)]
pub struct KeyEncoder {
    fields: Fields,
}

impl KeyEncoder {
    /// An encoder for an op of `kind` ("source", "exec", "file", "merge", "diff", "build", ...).
    pub fn new(kind: &str) -> KeyEncoder {
        let mut buf = Vec::with_capacity(256);
        put_str(&mut buf, KEY_VERSION);
        put_str(&mut buf, kind);
        KeyEncoder {
            fields: Fields { buf },
        }
    }

    /// The bytes written so far (what [`KeyEncoder::finish`] hashes).
    pub fn encoded(&self) -> &[u8] {
        &self.fields.buf
    }

    /// The key: BLAKE3 of the encoded bytes.
    pub fn finish(self) -> CacheKey {
        CacheKey(*blake3::hash(&self.fields.buf).as_bytes())
    }
}

impl std::ops::Deref for KeyEncoder {
    type Target = Fields;

    fn deref(&self) -> &Fields {
        &self.fields
    }
}

impl std::ops::DerefMut for KeyEncoder {
    fn deref_mut(&mut self) -> &mut Fields {
        &mut self.fields
    }
}

/// A sequence of named fields: the top level of a [`KeyEncoder`], or a struct value's body.
/// Each method writes one field and returns `self` for chaining.
#[derive(Clone, Debug, Default)]
pub struct Fields {
    buf: Vec<u8>,
}

impl Fields {
    fn name(&mut self, name: &str) -> &mut Self {
        self.buf.push(T_FIELD);
        put_len(&mut self.buf, name.len());
        self.buf.extend_from_slice(name.as_bytes());
        self
    }

    /// An unsigned integer field.
    pub fn u64(&mut self, name: &str, v: u64) -> &mut Self {
        self.name(name);
        put_u64(&mut self.buf, v);
        self
    }

    /// A signed integer field.
    pub fn i64(&mut self, name: &str, v: i64) -> &mut Self {
        self.name(name);
        self.buf.push(T_I64);
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A boolean field.
    pub fn bool(&mut self, name: &str, v: bool) -> &mut Self {
        self.name(name);
        self.buf.extend_from_slice(&[T_BOOL, u8::from(v)]);
        self
    }

    /// A string field.
    pub fn str(&mut self, name: &str, v: &str) -> &mut Self {
        self.name(name);
        put_str(&mut self.buf, v);
        self
    }

    /// A byte-string field.
    pub fn bytes(&mut self, name: &str, v: &[u8]) -> &mut Self {
        self.name(name);
        put_bytes(&mut self.buf, v);
        self
    }

    /// A cache-key field.
    pub fn key(&mut self, name: &str, v: &CacheKey) -> &mut Self {
        self.name(name);
        put_key(&mut self.buf, v);
        self
    }

    /// An optional string field: absent values are written as `n`, so `None` and `Some("")`
    /// differ. (To treat absent as default, skip the call instead.)
    pub fn opt_str(&mut self, name: &str, v: Option<&str>) -> &mut Self {
        self.name(name);
        match v {
            Some(v) => put_str(&mut self.buf, v),
            None => self.buf.push(T_NONE),
        }
        self
    }

    /// An optional integer field (absent is `n`).
    pub fn opt_u64(&mut self, name: &str, v: Option<u64>) -> &mut Self {
        self.name(name);
        match v {
            Some(v) => put_u64(&mut self.buf, v),
            None => self.buf.push(T_NONE),
        }
        self
    }

    /// A list of strings, order kept.
    pub fn str_list<I>(&mut self, name: &str, items: I) -> &mut Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.list_with(name, items, |buf, s| put_str(buf, s.as_ref()))
    }

    /// A list of integers, order kept.
    pub fn u64_list<I: IntoIterator<Item = u64>>(&mut self, name: &str, items: I) -> &mut Self {
        self.list_with(name, items, put_u64)
    }

    /// A list of cache keys, order kept.
    pub fn key_list<'a, I>(&mut self, name: &str, items: I) -> &mut Self
    where
        I: IntoIterator<Item = &'a CacheKey>,
    {
        self.list_with(name, items, put_key)
    }

    /// A string-to-string map; entry order does not matter (entries are sorted).
    pub fn str_map<I, K, V>(&mut self, name: &str, entries: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        self.map_with(name, entries, |buf, v| put_str(buf, v.as_ref()))
    }

    /// A nested struct field.
    pub fn structure(&mut self, name: &str, body: impl FnOnce(&mut Fields)) -> &mut Self {
        self.name(name);
        self.buf.push(T_STRUCT);
        body(self);
        self.buf.push(T_END);
        self
    }

    /// A list of structs, order kept; `body` writes one item's fields.
    pub fn struct_list<I, F>(&mut self, name: &str, items: I, mut body: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(&mut Fields, I::Item),
    {
        self.list_with(name, items, |buf, item| {
            let mut f = Fields {
                buf: std::mem::take(buf),
            };
            f.buf.push(T_STRUCT);
            body(&mut f, item);
            f.buf.push(T_END);
            *buf = f.buf;
        })
    }

    /// A map from strings to structs, order-independent; `body` writes one value's fields.
    pub fn struct_map<I, K, T, F>(&mut self, name: &str, entries: I, mut body: F) -> &mut Self
    where
        I: IntoIterator<Item = (K, T)>,
        K: AsRef<str>,
        F: FnMut(&mut Fields, T),
    {
        self.map_with(name, entries, |buf, v| {
            let mut f = Fields {
                buf: std::mem::take(buf),
            };
            f.buf.push(T_STRUCT);
            body(&mut f, v);
            f.buf.push(T_END);
            *buf = f.buf;
        })
    }

    /// The `platform` field: a struct of os, architecture, variant (empty fields omitted).
    pub fn platform(&mut self, os: &str, architecture: &str, variant: &str) -> &mut Self {
        self.structure("platform", |f| {
            for (name, v) in [
                ("os", os),
                ("architecture", architecture),
                ("variant", variant),
            ] {
                if !v.is_empty() {
                    f.str(name, v);
                }
            }
        })
    }

    /// The `inputs` field: the ordered keys of the op's inputs (each an output key).
    pub fn inputs<'a, I>(&mut self, keys: I) -> &mut Self
    where
        I: IntoIterator<Item = &'a CacheKey>,
    {
        self.key_list("inputs", keys)
    }

    fn map_with<I, K, T, F>(&mut self, name: &str, entries: I, mut put: F) -> &mut Self
    where
        I: IntoIterator<Item = (K, T)>,
        K: AsRef<str>,
        F: FnMut(&mut Vec<u8>, T),
    {
        let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = entries
            .into_iter()
            .map(|(k, v)| {
                let mut value = Vec::new();
                put(&mut value, v);
                (k.as_ref().as_bytes().to_vec(), value)
            })
            .collect();
        encoded.sort();
        self.name(name);
        self.buf.push(T_MAP);
        put_len(&mut self.buf, encoded.len());
        for (k, v) in encoded {
            put_bytes_tagged(&mut self.buf, T_STR, &k);
            self.buf.extend_from_slice(&v);
        }
        self
    }

    fn list_with<I, F>(&mut self, name: &str, items: I, mut put: F) -> &mut Self
    where
        I: IntoIterator,
        F: FnMut(&mut Vec<u8>, I::Item),
    {
        self.name(name);
        self.buf.push(T_LIST);
        let count_at = self.buf.len();
        put_len(&mut self.buf, 0);
        let mut count = 0usize;
        for item in items {
            put(&mut self.buf, item);
            count += 1;
        }
        self.buf[count_at..count_at + 8].copy_from_slice(&(count as u64).to_be_bytes());
        self
    }
}

fn put_len(buf: &mut Vec<u8>, len: usize) {
    buf.extend_from_slice(&(len as u64).to_be_bytes());
}

fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.push(T_U64);
    buf.extend_from_slice(&v.to_be_bytes());
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_bytes_tagged(buf, T_STR, s.as_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_bytes_tagged(buf, T_BYTES, b);
}

fn put_bytes_tagged(buf: &mut Vec<u8>, tag: u8, b: &[u8]) {
    buf.push(tag);
    put_len(buf, b.len());
    buf.extend_from_slice(b);
}

fn put_key(buf: &mut Vec<u8>, k: &CacheKey) {
    buf.push(T_KEY);
    buf.extend_from_slice(&k.0);
}

#[cfg(test)]
mod tests;
