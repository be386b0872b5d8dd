//! Filters as buildctl and buildkitd's GC policies send them: containerd's filter syntax.
//!
//! A filter list matches a record when any one of its strings does; a string is a
//! comma-separated list of selectors that must all hold:
//!
//! ```text
//! selectors := selector ("," selector)*
//! selector  := fieldpath [ operator value ]     without operator: the field is present (true)
//! operator  := "==" | "!=" | "~="               ~= is a regular expression search
//! value     := "quoted, with \" escapes" | anything up to the next ","
//! ```
//!
//! Fields, as BuildKit's cache manager exposes them: `id`, `parents` (ids joined by `;`),
//! `description`, `type` (`regular`, `source.local`, `exec.cachemount`, ...), and the flags
//! `inuse`, `shared`, `private`, `mutable` (never: records are immutable) and `immutable`.
//! Examples: `type==regular`, `id==3f4c...`, `description~=^RUN `, `inuse`, `type!=frontend,private`.

use std::borrow::Cow;

use regex::Regex;

use crate::error::{Error, Result};
use crate::record::Record;

/// A parsed filter list (any string may match); empty matches everything.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    any: Vec<Vec<Selector>>,
}

#[derive(Clone, Debug)]
struct Selector {
    field: String,
    op: Op,
}

#[derive(Clone, Debug)]
enum Op {
    Present,
    Equal(String),
    NotEqual(String),
    Matches(Regex),
}

/// Anything a filter can look at: the value of a field and whether it is present.
pub trait Fielded {
    fn field(&self, field: &str) -> (Cow<'_, str>, bool);
}

/// What a filter looks at: a record, and what the caller knows about its use.
pub struct Subject<'a> {
    pub record: &'a Record,
    pub in_use: bool,
    pub shared: bool,
}

impl Fielded for Subject<'_> {
    /// The value of `field` and whether it is present (BuildKit's adaptor).
    fn field(&self, field: &str) -> (Cow<'_, str>, bool) {
        let r = self.record;
        match field {
            "id" => (Cow::Owned(r.key.to_hex()), true),
            "parents" => {
                let ids: Vec<String> = r.parents.iter().map(|p| p.to_hex()).collect();
                (Cow::Owned(ids.join(";")), !ids.is_empty())
            }
            "description" => (Cow::Borrowed(&r.description), !r.description.is_empty()),
            "type" => (Cow::Borrowed(r.kind.as_str()), true),
            "inuse" => (Cow::Borrowed(""), self.in_use),
            "shared" => (Cow::Borrowed(""), self.shared),
            "private" => (Cow::Borrowed(""), !self.shared),
            "immutable" => (Cow::Borrowed(""), true),
            _ => (Cow::Borrowed(""), false),
        }
    }
}

impl Filters {
    /// Parses a filter list (one string per `--filter`).
    pub fn parse<S: AsRef<str>>(filters: &[S]) -> Result<Filters> {
        let any = filters
            .iter()
            .map(|f| parse_selectors(f.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        Ok(Filters { any })
    }

    /// Whether the filters match nothing in particular (no string given).
    pub fn is_empty(&self) -> bool {
        self.any.is_empty()
    }

    /// Whether `subject` matches.
    pub fn matches(&self, subject: &impl Fielded) -> bool {
        self.any.is_empty()
            || self
                .any
                .iter()
                .any(|all| all.iter().all(|s| s.matches(subject)))
    }
}

impl Selector {
    fn matches(&self, subject: &impl Fielded) -> bool {
        let (value, present) = subject.field(&self.field);
        match &self.op {
            Op::Present => present,
            Op::Equal(v) => present && value == v.as_str(),
            Op::NotEqual(v) => value != v.as_str(),
            Op::Matches(re) => re.is_match(&value),
        }
    }
}

fn parse_selectors(filter: &str) -> Result<Vec<Selector>> {
    let err = |reason: &str| Error::Filter {
        filter: filter.to_string(),
        reason: reason.to_string(),
    };
    let mut out = Vec::new();
    let mut rest = filter.trim();
    while !rest.is_empty() {
        let (selector, after) = parse_selector(rest).map_err(|r| err(&r))?;
        out.push(selector);
        rest = after.trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma.trim_start();
            if rest.is_empty() {
                return Err(err("a selector must follow ','"));
            }
        } else if !rest.is_empty() {
            return Err(err("expected ',' between selectors"));
        }
    }
    Ok(out)
}

/// One selector at the start of `s`, and what follows it.
fn parse_selector(s: &str) -> Result<(Selector, &str), String> {
    let (field, rest) = parse_fieldpath(s)?;
    let rest = rest.trim_start();
    let op = ["==", "!=", "~="]
        .into_iter()
        .find(|op| rest.starts_with(op));
    let Some(op) = op else {
        return Ok((
            Selector {
                field,
                op: Op::Present,
            },
            rest,
        ));
    };
    let (value, rest) = parse_value(rest[2..].trim_start())?;
    let op = match op {
        "==" => Op::Equal(value),
        "!=" => Op::NotEqual(value),
        _ => Op::Matches(Regex::new(&value).map_err(|e| e.to_string())?),
    };
    Ok((Selector { field, op }, rest))
}

/// `a.b.c` (the first part names the field) or a quoted field.
fn parse_fieldpath(s: &str) -> Result<(String, &str), String> {
    let mut parts = Vec::new();
    let mut rest = s;
    loop {
        let (part, after) = if rest.starts_with('"') {
            parse_quoted(rest)?
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 || !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
                return Err("expected a field name".into());
            }
            (rest[..end].to_string(), &rest[end..])
        };
        parts.push(part);
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None => return Ok((parts.swap_remove(0), after)),
        }
    }
}

/// A quoted value, or everything up to the next `,` (trimmed).
fn parse_value(s: &str) -> Result<(String, &str), String> {
    if s.starts_with('"') {
        return parse_quoted(s);
    }
    let end = s.find(',').unwrap_or(s.len());
    let value = s[..end].trim();
    if value.is_empty() {
        return Err("expected a value after the operator".into());
    }
    Ok((value.to_string(), &s[end..]))
}

/// A double-quoted string with `\"`, `\\`, `\n`, `\t` escapes, and what follows it.
fn parse_quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next().map(|x| x.1) {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c @ ('"' | '\\' | '/')) => out.push(c),
                _ => return Err("bad escape in quoted string".into()),
            },
            c => out.push(c),
        }
    }
    Err("unterminated quoted string".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::CacheKey;
    use crate::record::RecordKind;

    fn record(kind: RecordKind, description: &str, parents: usize) -> Record {
        Record {
            key: CacheKey::from_bytes([0xab; 32]),
            kind,
            description: description.into(),
            parents: vec![CacheKey::from_bytes([1; 32]); parents],
            ..Default::default()
        }
    }

    fn matches(filters: &[&str], r: &Record, in_use: bool, shared: bool) -> bool {
        let f = Filters::parse(filters).unwrap();
        f.matches(&Subject {
            record: r,
            in_use,
            shared,
        })
    }

    #[test]
    fn type_id_and_description() {
        let r = record(RecordKind::ExecCacheMount, "RUN make all", 0);
        assert!(matches(&["type==exec.cachemount"], &r, false, false));
        assert!(!matches(&["type==regular"], &r, false, false));
        assert!(matches(&["type!=regular"], &r, false, false));
        assert!(matches(
            &[&format!("id=={}", "ab".repeat(32))],
            &r,
            false,
            false
        ));
        assert!(matches(&["description~=^RUN make"], &r, false, false));
        assert!(matches(
            &["description==\"RUN make all\""],
            &r,
            false,
            false
        ));
        assert!(!matches(&["description~=^COPY"], &r, false, false));
    }

    #[test]
    fn list_is_any_commas_are_all() {
        let r = record(RecordKind::SourceLocal, "local", 1);
        assert!(matches(
            &["type==regular", "type==source.local"],
            &r,
            false,
            false
        ));
        assert!(!matches(&["type==source.local,inuse"], &r, false, false));
        assert!(matches(&["type==source.local,inuse"], &r, true, false));
        assert!(matches(&["type==source.local, private"], &r, false, false));
        assert!(!matches(&["shared"], &r, false, false));
        assert!(matches(&["parents~=0101"], &r, false, false));
        assert!(!matches(
            &["parents"],
            &record(RecordKind::Regular, "", 0),
            false,
            false
        ));
    }

    #[test]
    fn empty_matches_everything() {
        let r = record(RecordKind::Internal, "", 0);
        assert!(matches(&[], &r, false, false));
        assert!(matches(&[""], &r, false, false));
        assert!(Filters::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_filters_are_errors() {
        for bad in [
            "==x",
            "type==",
            "type==a,",
            "description~=(",
            "type==\"open",
        ] {
            let e = Filters::parse(&[bad]).unwrap_err().to_string();
            assert!(e.contains("invalid filter"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_fields_are_absent() {
        let r = record(RecordKind::Regular, "", 0);
        assert!(!matches(&["size==0"], &r, false, false));
        assert!(matches(&["size!=0"], &r, false, false));
        assert!(matches(&["type.sub==regular"], &r, false, false));
    }
}
