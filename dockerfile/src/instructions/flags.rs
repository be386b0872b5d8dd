//! Instruction flag parsing (upstream `BFlags`): `--name`, `--name=value`,
//! repeated flags only for list flags, `--` ends the flags.

use std::collections::HashMap;

use crate::suggest;

/// Kind of a declared flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--x`, `--x=true|false` (case-insensitive).
    Bool,
    /// `--x=value`, at most once.
    Str,
    /// `--x=value`, repeatable.
    List,
}

/// Values of the flags that were given.
#[derive(Debug, Default)]
pub(crate) struct Values {
    values: HashMap<&'static str, Vec<String>>,
    used: Vec<String>,
}

impl Values {
    /// Last value of a string flag, `None` when absent or empty (upstream
    /// treats an empty value as unset).
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .filter(|s| !s.is_empty())
            .cloned()
    }

    /// Last value of a string flag as given (possibly empty).
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// A bool flag: `None` when not given.
    pub(crate) fn bool(&self, name: &str) -> Option<bool> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|s| s == "true")
    }

    /// All values of a list flag, in order.
    pub(crate) fn list(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// Names of the flags that were given, in first-use order.
    pub(crate) fn used(&self) -> Vec<String> {
        self.used.clone()
    }
}

/// Parses `args` against the declared flags.
pub(crate) fn parse(args: &[String], defs: &[(&'static str, Kind)]) -> Result<Values, String> {
    let mut out = Values::default();
    for arg in args {
        if arg == "--" {
            break;
        }
        if !arg.starts_with("--") {
            return Err(format!("arg should start with -- : {arg}"));
        }
        let (flag, value) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v)),
            None => (arg.as_str(), None),
        };
        let name = &flag[2..];
        let Some(&(key, kind)) = defs.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = defs.iter().map(|(n, _)| *n).collect();
            return Err(suggest::wrap(
                format!("unknown flag: {flag}"),
                name,
                &names,
                true,
            ));
        };
        if out.values.contains_key(key) && kind != Kind::List {
            return Err(format!("duplicate flag specified: {flag}"));
        }
        let value = flag_value(flag, kind, value)?;
        if !out.used.iter().any(|u| u == key) {
            out.used.push(key.to_string());
        }
        out.values.entry(key).or_default().push(value);
    }
    Ok(out)
}

fn flag_value(flag: &str, kind: Kind, value: Option<&str>) -> Result<String, String> {
    let missing = || format!("missing a value on flag: {flag}");
    match (kind, value) {
        (Kind::Bool, Some("")) => Err(missing()),
        (Kind::Bool, None) => Ok("true".to_string()),
        (Kind::Bool, Some(v)) => match v.to_lowercase().as_str() {
            "true" => Ok("true".to_string()),
            "false" => Ok("false".to_string()),
            _ => Err(format!("expecting boolean value for flag {flag}, not: {v}")),
        },
        (_, None) => Err(missing()),
        (_, Some(v)) => Ok(v.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    const DEFS: &[(&str, Kind)] = &[
        ("str1", Kind::Str),
        ("bool1", Kind::Bool),
        ("l", Kind::List),
    ];

    #[test]
    fn builder_flags() {
        let ok = |a: &[&str]| parse(&args(a), DEFS).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        let err = |a: &[&str]| parse(&args(a), DEFS).err().unwrap_or_default();
        assert!(ok(&[]).used().is_empty());
        assert!(ok(&["--"]).used().is_empty());
        assert_eq!(ok(&["--str1=BYE"]).string("str1").as_deref(), Some("BYE"));
        assert_eq!(ok(&["--str1="]).string("str1"), None);
        assert_eq!(ok(&["--bool1"]).bool("bool1"), Some(true));
        assert_eq!(ok(&["--bool1=FALSE"]).bool("bool1"), Some(false));
        assert_eq!(ok(&["--l=a", "--l=b"]).list("l"), ["a", "b"]);
        assert_eq!(ok(&["--l=a", "--", "--bogus"]).used(), ["l"]);
        assert_eq!(err(&["--str1"]), "missing a value on flag: --str1");
        assert_eq!(err(&["--bool1="]), "missing a value on flag: --bool1");
        assert_eq!(
            err(&["--bool1=yes"]),
            "expecting boolean value for flag --bool1, not: yes"
        );
        assert_eq!(
            err(&["--str1=a", "--str1=b"]),
            "duplicate flag specified: --str1"
        );
        assert_eq!(
            err(&["--str2=x"]),
            "unknown flag: --str2 (did you mean str1?)"
        );
        assert_eq!(err(&["--zzzzzz"]), "unknown flag: --zzzzzz");
        assert_eq!(err(&["-x"]), "arg should start with -- : -x");
    }
}
